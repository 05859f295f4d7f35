//! The Lua scripts: each atomic operation is one script, run with EVALSHA
//! (and once with `EVAL`, which loads it, after `NOSCRIPT`: after a server
//! restart, or on a cluster node that has not run it yet).
//!
//! Every script checks what it reads before its first write, so one that
//! replies `TOTPCORRUPT` has changed nothing. Steps and times are 20-digit
//! strings compared by [`PRELUDE`]'s `cmp20` in two exact halves; no 64-bit
//! value is ever a Lua number. All keys a script touches carry the user's
//! hash tag; those it cannot know in advance (a replaced authenticator's
//! fields) live in hashes it was given.

use std::sync::LazyLock;

use redis::Script;

/// Helpers shared by the scripts.
const PRELUDE: &str = r"
local function corrupt(what)
  return redis.error_reply('TOTPCORRUPT ' .. what)
end
local function is20(s)
  return #s == 20 and string.match(s, '^%d+$') ~= nil
end
local function cmp20(a, b)
  local ah, bh = tonumber(string.sub(a, 1, 10)), tonumber(string.sub(b, 1, 10))
  if ah ~= bh then
    if ah < bh then return -1 else return 1 end
  end
  local al, bl = tonumber(string.sub(a, 11)), tonumber(string.sub(b, 11))
  if al ~= bl then
    if al < bl then return -1 else return 1 end
  end
  return 0
end
local function epoch_ok(key)
  local e = redis.call('GET', key)
  return (not e) or (#e <= 18 and string.match(e, '^%d+$') ~= nil)
end
local function drop_fields(key, names, id)
  local f = {}
  for i, name in ipairs(names) do f[i] = name .. ':' .. id end
  redis.call('HDEL', key, unpack(f))
end
local AUTH_FIELDS = {'name', 'secret', 'params', 'created', 'last', 'offset', 'rstep', 'roff'}
local function drop_auth(key, id) drop_fields(key, AUTH_FIELDS, id) end
local PENDING_FIELDS = {'name', 'secret', 'params', 'created', 'replaces'}
local function drop_pending(key, id) drop_fields(key, PENDING_FIELDS, id) end
local function auth_ids(key)
  local ids = {}
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, 5) == 'name:' then ids[#ids + 1] = string.sub(f, 6) end
  end
  return ids
end
";

/// A script: its source, for `EVAL`, and its SHA-1, for `EVALSHA`.
pub(crate) struct Lua {
    code: String,
    script: Script,
}

impl Lua {
    fn new(code: String) -> Self {
        let script = Script::new(&code);
        Self { code, script }
    }

    /// The source.
    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// The SHA-1 of the source, in hex.
    pub(crate) fn hash(&self) -> &str {
        self.script.get_hash()
    }
}

fn script(body: &str) -> Lua {
    Lua::new(format!("{PRELUDE}{body}"))
}

/// `consume_step`. KEYS: auth, throttle. ARGV: id, step (20 digits),
/// offset. Replies 0 not found, 1 consumed, 2 replayed. Consuming also
/// deletes the throttle key (the trait's contract: a success forgets the
/// failures in the same atomic call, sparing the engine a `clear_throttle`
/// round trip); not found and replayed touch nothing.
pub(crate) static CONSUME_STEP: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 'name:' .. id) == 0 then return 0 end
local last = redis.call('HGET', KEYS[1], 'last:' .. id)
if last then
  if not is20(last) then return corrupt('last step of ' .. id) end
  if cmp20(ARGV[2], last) <= 0 then return 2 end
end
redis.call('HSET', KEYS[1], 'last:' .. id, ARGV[2], 'offset:' .. id, ARGV[3])
redis.call('HDEL', KEYS[1], 'rstep:' .. id, 'roff:' .. id)
redis.call('DEL', KEYS[2])
return 1
",
    )
});

/// `status` on a cluster (one server uses `MULTI`/`EXEC`). KEYS: epoch,
/// auth, sessions ended. Replies `{epoch or nil, 1 if enrolled else 0,
/// sessions ended or nil}`, read atomically.
pub(crate) static STATUS: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"
local epoch = redis.call('GET', KEYS[1]) or false
local ended = redis.call('GET', KEYS[3]) or false
return {epoch, redis.call('EXISTS', KEYS[2]), ended}
",
    )
});

/// `record_miss`, the same work for both forms. KEYS: auth. ARGV: the
/// candidate's authenticator id (empty for a plain miss), step (20 digits),
/// offset. Replies 1, or 0 for a user without authenticators.
///
/// Both forms read the same keys and make the same one write: `HSET` of
/// the two candidate fields of one authenticator. With a candidate for an
/// authenticator the user has, that one gets it; otherwise (a plain miss,
/// or an id the user does not have) the user's first authenticator gets its
/// own candidate written back unchanged (empty fields when it has none).
/// Redis counts and propagates an `HSET` whether or not the value changed,
/// so the append-only file and the replicas get one write either way, and
/// with `appendfsync always` one `fsync` either way: no response time tells
/// a guess that matched a step outside the window from a plain miss.
pub(crate) static RECORD_MISS: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"
local want = ARGV[1]
local target = false
for _, id in ipairs(auth_ids(KEYS[1])) do
  if (not target) or id == want then target = id end
end
if not target then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'rstep:' .. target, 'roff:' .. target)
local step, off = cur[1] or '', cur[2] or ''
if target == want then step, off = ARGV[2], ARGV[3] end
redis.call('HSET', KEYS[1], 'rstep:' .. target, step, 'roff:' .. target, off)
return 1
",
    )
});

/// `put_pending`. KEYS: pending. ARGV: id, expired before (20 digits), max,
/// name, sealed secret, params, created (20 digits), and the replaced id if
/// any. Replies 1 stored, 0 too many.
///
/// Drops the pending enrollments created before the limit (and the fields
/// of the layout before issue 11), then adds this one if fewer than `max`
/// remain. An id already pending is refused with an error, never
/// overwritten: it would be another session's.
pub(crate) static PUT_PENDING: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"
local key, id = KEYS[1], ARGV[1]
local all = redis.call('HGETALL', key)
local created = {}
for i = 1, #all, 2 do
  local kind, pid = string.match(all[i], '^(%a+):(.+)$')
  if kind == 'created' then
    if not is20(all[i + 1]) then return corrupt('creation time of pending enrollment ' .. pid) end
    created[pid] = all[i + 1]
  elseif kind == 'name' and pid == id then
    return redis.error_reply('TOTPDUPLICATE pending enrollment id')
  end
end
local left = 0
for pid, at in pairs(created) do
  if cmp20(at, ARGV[2]) < 0 then drop_pending(key, pid) else left = left + 1 end
end
redis.call('HDEL', key, 'id', 'name', 'secret', 'params', 'created', 'replaces')
if left >= tonumber(ARGV[3]) then return 0 end
local f = {'name:' .. id, ARGV[4], 'secret:' .. id, ARGV[5], 'params:' .. id, ARGV[6],
  'created:' .. id, ARGV[7]}
if ARGV[8] then
  f[9] = 'replaces:' .. id
  f[10] = ARGV[8]
end
redis.call('HSET', key, unpack(f))
return 1
",
    )
});

/// `activate_pending`. KEYS: pending, auth, epoch, recovery, throttle.
/// ARGV: pending id, step (20 digits), offset, now (ms), first only (`1` or
/// `0`), max authenticators, then the recovery code hashes. Replies
/// `{outcome, epoch, issued}`: outcome 0 no pending, 1 already enrolled,
/// 2 too many, 3 done (then the new epoch as a string, and 1 if the
/// recovery codes were replaced).
///
/// The checks read before the first write; done, it activates, removes the
/// replaced authenticator and this pending enrollment only, clears the
/// throttle, issues the codes if the user had no authenticator or no codes
/// left, and grows the epoch: never an active authenticator without its
/// codes, nor codes issued for an activation that lost a race.
pub(crate) static ACTIVATE: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"
local id = ARGV[1]
local p = redis.call('HMGET', KEYS[1],
  'name:' .. id, 'secret:' .. id, 'params:' .. id, 'created:' .. id, 'replaces:' .. id)
if not p[1] then
  if p[2] or p[3] or p[4] or p[5] then return corrupt('pending enrollment ' .. id) end
  return {0, '', 0}
end
if (not p[2]) or (not p[3]) or (not p[4]) then return corrupt('pending enrollment ' .. id) end
if not epoch_ok(KEYS[3]) then return corrupt('epoch') end
local active, replaced = 0, false
for _, a in ipairs(auth_ids(KEYS[2])) do
  active = active + 1
  if a == p[5] then replaced = true end
end
if ARGV[5] == '1' and active > 0 then return {1, '', 0} end
local staying = active
if replaced then staying = staying - 1 end
if staying >= tonumber(ARGV[6]) then return {2, '', 0} end
local codes_left = redis.call('SCARD', KEYS[4])
if p[5] then drop_auth(KEYS[2], p[5]) end
drop_auth(KEYS[2], id)
redis.call('HSET', KEYS[2],
  'name:' .. id, p[1], 'secret:' .. id, p[2], 'params:' .. id, p[3],
  'created:' .. id, ARGV[4], 'last:' .. id, ARGV[2], 'offset:' .. id, ARGV[3])
drop_pending(KEYS[1], id)
redis.call('DEL', KEYS[5])
local issued = 0
if active == 0 or codes_left == 0 then
  redis.call('DEL', KEYS[4])
  if #ARGV > 6 then redis.call('SADD', KEYS[4], unpack(ARGV, 7)) end
  issued = 1
end
redis.call('INCR', KEYS[3])
return {3, redis.call('GET', KEYS[3]), issued}
",
    )
});

/// `revoke`. KEYS: auth, epoch, recovery. ARGV: id. Replies 1 if it
/// existed. Revoking the user's last authenticator deletes the recovery
/// codes in the same script.
pub(crate) static REVOKE: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 'name:' .. id) == 0 then return 0 end
if not epoch_ok(KEYS[2]) then return corrupt('epoch') end
local last = #auth_ids(KEYS[1]) == 1
drop_auth(KEYS[1], id)
if last then redis.call('DEL', KEYS[3]) end
redis.call('INCR', KEYS[2])
return 1
",
    )
});

/// `reseal`. KEYS: auth. ARGV: id, sealed secret. Replies 1 if it existed.
pub(crate) static RESEAL: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 'name:' .. id) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'secret:' .. id, ARGV[2])
return 1
",
    )
});

/// `reset`. KEYS: auth, pending, recovery, epoch, sessions ended. ARGV:
/// now (ms). Replies 1. The throttle key stays.
pub(crate) static RESET: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"
if not epoch_ok(KEYS[4]) then return corrupt('epoch') end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('SET', KEYS[5], ARGV[1])
redis.call('INCR', KEYS[4])
return 1
",
    )
});

/// The throttle charge, mirroring `ThrottleState::begin`, for the scripts
/// that charge an attempt. `charge(key, a)` reads its arguments from
/// `ARGV[a]` on: now (20 digits), free attempts, index of the last ramp
/// entry, then for each ramp entry `j` its `until` (20 digits) and TTL (ms
/// or `persist`). Returns `{0, until}` when locked, `{1, until}` when
/// charged, or an error reply (before any write).
const CHARGE: &str = r"
local function charge(key, a)
  local now = ARGV[a]
  local free = tonumber(ARGV[a + 1])
  local last = tonumber(ARGV[a + 2])
  local s = redis.call('HMGET', key, 'attempts', 'until')
  local attempts = 0
  if s[1] then
    if #s[1] > 10 or not string.match(s[1], '^%d+$') then return corrupt('throttle attempts') end
    attempts = tonumber(s[1])
    if attempts > 4294967295 then return corrupt('throttle attempts') end
  end
  if s[2] then
    if not is20(s[2]) then return corrupt('throttle lockout') end
    if cmp20(now, s[2]) < 0 then return {0, s[2]} end
  end
  if attempts < 4294967295 then attempts = attempts + 1 end
  local j = 0
  if attempts > free then
    j = attempts - free
    if j > last then j = last end
  end
  local locked_until = ARGV[a + 3 + 2 * j]
  local ttl = ARGV[a + 4 + 2 * j]
  redis.call('HSET', key, 'attempts', string.format('%d', attempts), 'until', locked_until)
  if ttl == 'persist' then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIRE', key, ttl)
  end
  return {1, locked_until}
end
local function digits_of(params)
  local ok, p = pcall(cjson.decode, params)
  if ok and type(p) == 'table' and type(p.digits) == 'number' then return p.digits end
  return nil
end
";

fn charging_script(body: &str) -> Lua {
    Lua::new(format!("{PRELUDE}{CHARGE}{body}"))
}

/// `begin_attempt`. KEYS: throttle. ARGV: the charge's (see [`CHARGE`]).
/// Replies `{0, until}` when locked, `{1, until}` when charged.
pub(crate) static BEGIN_ATTEMPT: LazyLock<Lua> = LazyLock::new(|| {
    charging_script(
        r"
return charge(KEYS[1], 1)
",
    )
});

/// `begin_verification`: `status`, `authenticators` and, if one of them
/// has the code's digit count, the charge of `begin_attempt`, in one
/// script. KEYS: epoch, auth, sessions ended, throttle. ARGV: the code's
/// digit count (empty for a malformed code), then the charge's (see
/// [`CHARGE`]) from `ARGV[2]`. Replies `{epoch or nil, sessions ended or
/// nil, the auth hash as HGETALL gives it, charged, until}`, charged `-1`
/// (nothing charged, `until` empty), `0` locked or `1` charged.
///
/// Every authenticator's parameters are read before the charge writes, so
/// a corrupt record replies `TOTPCORRUPT` with nothing changed.
pub(crate) static BEGIN_VERIFICATION: LazyLock<Lua> = LazyLock::new(|| {
    charging_script(
        r"
local epoch = redis.call('GET', KEYS[1])
local ended = redis.call('GET', KEYS[3])
local all = redis.call('HGETALL', KEYS[2])
local want = tonumber(ARGV[1])
local found = false
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 7) == 'params:' then
    local d = digits_of(all[i + 1])
    if not d then return corrupt('params of ' .. string.sub(all[i], 8)) end
    if d == want then found = true end
  end
end
local c = {-1, ''}
if found then
  c = charge(KEYS[4], 2)
  if c.err then return c end
end
return {epoch or false, ended or false, all, c[1], c[2]}
",
    )
});

/// `begin_confirmation`: `pending` and, if the pending enrollment exists
/// with the code's digit count, the charge of `begin_attempt`, in one
/// script. KEYS: pending, throttle. ARGV: the pending enrollment's id, the
/// code's digit count (empty for a malformed code), then the charge's (see
/// [`CHARGE`]) from `ARGV[3]`. Replies `{name, secret, params, created,
/// replaces, charged, until}`, each field nil when absent, `charged` as
/// for `begin_verification`.
pub(crate) static BEGIN_CONFIRMATION: LazyLock<Lua> = LazyLock::new(|| {
    charging_script(
        r"
local id = ARGV[1]
local p = redis.call('HMGET', KEYS[1],
  'name:' .. id, 'secret:' .. id, 'params:' .. id, 'created:' .. id, 'replaces:' .. id)
local c = {-1, ''}
if p[1] and p[3] then
  local d = digits_of(p[3])
  if not d then return corrupt('params of pending enrollment ' .. id) end
  if d == tonumber(ARGV[2]) then
    c = charge(KEYS[2], 3)
    if c.err then return c end
  end
end
return {p[1], p[2], p[3], p[4], p[5], c[1], c[2]}
",
    )
});

/// `replace_recovery_codes`. KEYS: recovery. ARGV: the new hashes (32
/// bytes each, maybe none). Replies 1. A script rather than `MULTI`/`EXEC`
/// so that the replica acknowledgement can follow it in the same pipeline.
pub(crate) static REPLACE_RECOVERY: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"
redis.call('DEL', KEYS[1])
if #ARGV > 0 then redis.call('SADD', KEYS[1], unpack(ARGV)) end
return 1
",
    )
});

/// `consume_recovery_code`. KEYS: recovery. ARGV: hash (32 bytes).
/// Compares against every stored hash in constant time per member (XOR
/// accumulated over all bytes), then removes the match. Replies 1 if found.
pub(crate) static CONSUME_RECOVERY: LazyLock<Lua> = LazyLock::new(|| {
    script(
        r"
local want = ARGV[1]
local n = #want
local found = false
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if #m == n then
    local acc = 0
    for i = 1, n do
      acc = bit.bor(acc, bit.bxor(string.byte(m, i), string.byte(want, i)))
    end
    if acc == 0 then found = m end
  end
end
if found then
  redis.call('SREM', KEYS[1], found)
  return 1
end
return 0
",
    )
});
