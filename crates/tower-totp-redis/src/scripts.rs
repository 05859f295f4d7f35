//! The Lua scripts: each atomic operation is one script, run with EVALSHA
//! (and loaded once more after `NOSCRIPT`, as after a server restart).
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
local FIELDS = {'name', 'secret', 'params', 'created', 'last', 'offset', 'rstep', 'roff'}
local function drop_auth(key, id)
  local f = {}
  for i, name in ipairs(FIELDS) do f[i] = name .. ':' .. id end
  redis.call('HDEL', key, unpack(f))
end
";

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}{body}"))
}

/// `consume_step`. KEYS: auth, throttle. ARGV: id, step (20 digits),
/// offset. Replies 0 not found, 1 consumed, 2 replayed. Consuming also
/// deletes the throttle key (the trait's contract: a success forgets the
/// failures in the same atomic call, sparing the engine a `clear_throttle`
/// round trip); not found and replayed touch nothing.
pub(crate) static CONSUME_STEP: LazyLock<Script> = LazyLock::new(|| {
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

/// `set_resync_candidate`. KEYS: auth. ARGV: id, step (20 digits), offset.
/// Does nothing for an authenticator that is gone.
pub(crate) static SET_RESYNC: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 'name:' .. id) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'rstep:' .. id, ARGV[2], 'roff:' .. id, ARGV[3])
return 1
",
    )
});

/// `activate_pending`. KEYS: pending, auth, epoch. ARGV: pending id, step
/// (20 digits), offset, now (ms). Replies the new epoch, or nil when no
/// pending enrollment has that id.
pub(crate) static ACTIVATE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local id = ARGV[1]
local p = redis.call('HMGET', KEYS[1], 'id', 'name', 'secret', 'params', 'replaces')
if (not p[1]) or p[1] ~= id then return false end
if (not p[2]) or (not p[3]) or (not p[4]) then return corrupt('pending enrollment') end
if not epoch_ok(KEYS[3]) then return corrupt('epoch') end
if p[5] then drop_auth(KEYS[2], p[5]) end
drop_auth(KEYS[2], id)
redis.call('HSET', KEYS[2],
  'name:' .. id, p[2], 'secret:' .. id, p[3], 'params:' .. id, p[4],
  'created:' .. id, ARGV[4], 'last:' .. id, ARGV[2], 'offset:' .. id, ARGV[3])
redis.call('DEL', KEYS[1])
return redis.call('INCR', KEYS[3])
",
    )
});

/// `revoke`. KEYS: auth, epoch. ARGV: id. Replies 1 if it existed.
pub(crate) static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 'name:' .. id) == 0 then return 0 end
if not epoch_ok(KEYS[2]) then return corrupt('epoch') end
drop_auth(KEYS[1], id)
redis.call('INCR', KEYS[2])
return 1
",
    )
});

/// `reseal`. KEYS: auth. ARGV: id, sealed secret. Replies 1 if it existed.
pub(crate) static RESEAL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 'name:' .. id) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'secret:' .. id, ARGV[2])
return 1
",
    )
});

/// `reset`. KEYS: auth, pending, recovery, epoch. Replies the new epoch.
pub(crate) static RESET: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
if not epoch_ok(KEYS[4]) then return corrupt('epoch') end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return redis.call('INCR', KEYS[4])
",
    )
});

/// `begin_attempt`, mirroring `ThrottleState::begin`. KEYS: throttle.
/// ARGV: now (20 digits), free attempts, index of the last ramp entry, then
/// for each ramp entry `j` its `until` (20 digits) and TTL (ms or
/// `persist`). Replies `{0, until}` when locked, `{1, until}` when charged.
pub(crate) static BEGIN_ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local now = ARGV[1]
local free = tonumber(ARGV[2])
local last = tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'attempts', 'until')
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
local locked_until = ARGV[4 + 2 * j]
local ttl = ARGV[5 + 2 * j]
redis.call('HSET', KEYS[1], 'attempts', string.format('%d', attempts), 'until', locked_until)
if ttl == 'persist' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, locked_until}
",
    )
});

/// `consume_recovery_code`. KEYS: recovery. ARGV: hash (32 bytes).
/// Compares against every stored hash in constant time per member (XOR
/// accumulated over all bytes), then removes the match. Replies 1 if found.
pub(crate) static CONSUME_RECOVERY: LazyLock<Script> = LazyLock::new(|| {
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
