//! Distributions of model values, as written in scenario files, and their
//! checked, ready-to-sample form.
//!
//! In TOML a distribution is a table with a `kind`:
//!
//! ```toml
//! clock_offset_s = { kind = "normal", mean = 0.0, sd = 0.5 }
//! reaction_delay_s = { kind = "log_normal", median = 6.0, sigma = 0.4 }
//!
//! [fleet.drift_s_per_day]
//! kind = "mixture"
//! parts = [
//!     { weight = 0.965, dist = { kind = "fixed", value = 0.0 } },
//!     { weight = 0.035, dist = { kind = "uniform", min = -2.0, max = 2.0 } },
//! ]
//! ```

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use serde::{Deserialize, Serialize};

/// A distribution of real values, as written in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Always `value`.
    Fixed {
        /// The value.
        value: f64,
    },
    /// Uniform on `[min, max)`.
    Uniform {
        /// Lower bound.
        min: f64,
        /// Upper bound (at least `min`).
        max: f64,
    },
    /// Normal with mean `mean` and standard deviation `sd`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation (zero or more).
        sd: f64,
    },
    /// Log-normal with median `median` (> 0) and shape `sigma` (the standard
    /// deviation of the logarithm): right-skewed, for human delays.
    LogNormal {
        /// Median.
        median: f64,
        /// Standard deviation of `ln(x)`.
        sigma: f64,
    },
    /// Exponential with mean `mean` (> 0).
    Exponential {
        /// Mean.
        mean: f64,
    },
    /// Pick one part with probability proportional to its weight, then
    /// draw from it.
    Mixture {
        /// The parts.
        parts: Vec<Part>,
    },
}

/// One part of a [`Dist::Mixture`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Relative weight (> 0).
    pub weight: f64,
    /// The distribution of this part.
    pub dist: Dist,
}

impl Dist {
    /// Always `value`.
    pub fn fixed(value: f64) -> Self {
        Self::Fixed { value }
    }

    /// Uniform on `[min, max)`.
    pub fn uniform(min: f64, max: f64) -> Self {
        Self::Uniform { min, max }
    }

    /// Normal with `mean` and standard deviation `sd`.
    pub fn normal(mean: f64, sd: f64) -> Self {
        Self::Normal { mean, sd }
    }

    /// Check the parameters and prepare for sampling.
    ///
    /// # Errors
    ///
    /// [`DistError`] naming the bad parameter.
    pub fn sampler(&self) -> Result<Sampler, DistError> {
        let finite = |name: &'static str, v: f64| {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(DistError::NotFinite(name))
            }
        };
        Ok(match self {
            Self::Fixed { value } => Sampler::Fixed(finite("value", *value)?),
            Self::Uniform { min, max } => {
                let (min, max) = (finite("min", *min)?, finite("max", *max)?);
                if max < min {
                    return Err(DistError::Range("uniform needs min <= max"));
                }
                Sampler::Uniform {
                    min,
                    span: max - min,
                }
            }
            Self::Normal { mean, sd } => {
                let (mean, sd) = (finite("mean", *mean)?, finite("sd", *sd)?);
                if sd < 0.0 {
                    return Err(DistError::Range("normal needs sd >= 0"));
                }
                if sd == 0.0 {
                    Sampler::Fixed(mean)
                } else {
                    Sampler::Normal(
                        Normal::new(mean, sd).map_err(|_| DistError::Range("bad normal"))?,
                    )
                }
            }
            Self::LogNormal { median, sigma } => {
                let (median, sigma) = (finite("median", *median)?, finite("sigma", *sigma)?);
                if median <= 0.0 || sigma < 0.0 {
                    return Err(DistError::Range(
                        "log_normal needs median > 0 and sigma >= 0",
                    ));
                }
                Sampler::LogNormal(
                    LogNormal::new(median.ln(), sigma)
                        .map_err(|_| DistError::Range("bad log_normal"))?,
                )
            }
            Self::Exponential { mean } => {
                let mean = finite("mean", *mean)?;
                if mean <= 0.0 {
                    return Err(DistError::Range("exponential needs mean > 0"));
                }
                Sampler::Exponential(
                    Exp::new(1.0 / mean).map_err(|_| DistError::Range("bad exponential"))?,
                )
            }
            Self::Mixture { parts } => {
                if parts.is_empty() {
                    return Err(DistError::Range("mixture needs at least one part"));
                }
                let total: f64 = parts.iter().map(|p| p.weight).sum();
                let mut cumulative = 0.0;
                let mut out = Vec::with_capacity(parts.len());
                for p in parts {
                    let w = finite("weight", p.weight)?;
                    if w <= 0.0 {
                        return Err(DistError::Range("mixture weights must be > 0"));
                    }
                    cumulative += w / total;
                    out.push((cumulative, p.dist.sampler()?));
                }
                Sampler::Mixture(out)
            }
        })
    }
}

/// A checked distribution, ready to draw from.
#[derive(Debug, Clone)]
pub enum Sampler {
    /// A constant.
    Fixed(f64),
    /// `min + span * U[0, 1)`.
    Uniform {
        /// Lower bound.
        min: f64,
        /// Width.
        span: f64,
    },
    /// Normal.
    Normal(Normal<f64>),
    /// Log-normal.
    LogNormal(LogNormal<f64>),
    /// Exponential.
    Exponential(Exp<f64>),
    /// Parts with their cumulative probability.
    Mixture(Vec<(f64, Sampler)>),
}

impl Sampler {
    /// Draw one value.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Self::Fixed(v) => *v,
            Self::Uniform { min, span } => min + span * rng.random::<f64>(),
            Self::Normal(d) => d.sample(rng),
            Self::LogNormal(d) => d.sample(rng),
            Self::Exponential(d) => d.sample(rng),
            Self::Mixture(parts) => {
                let u = rng.random::<f64>();
                let last = parts.len().saturating_sub(1);
                let i = parts.iter().position(|(c, _)| u < *c).unwrap_or(last);
                parts.get(i).map_or(0.0, |(_, s)| s.sample(rng))
            }
        }
    }
}

/// A distribution's parameters do not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    /// A parameter is infinite or NaN.
    #[error("parameter `{0}` must be a finite number")]
    NotFinite(&'static str),
    /// A parameter is out of its range.
    #[error("{0}")]
    Range(&'static str),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn mixture_weights_are_honoured() {
        let d = Dist::Mixture {
            parts: vec![
                Part {
                    weight: 0.965,
                    dist: Dist::fixed(0.0),
                },
                Part {
                    weight: 0.035,
                    dist: Dist::fixed(3600.0),
                },
            ],
        };
        let s = d.sampler().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 200_000;
        let hour = (0..n).filter(|_| s.sample(&mut rng) == 3600.0).count();
        let p = hour as f64 / f64::from(n);
        assert!((p - 0.035).abs() < 0.003, "{p}");
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(Dist::uniform(2.0, 1.0).sampler().is_err());
        assert!(Dist::normal(0.0, -1.0).sampler().is_err());
        assert!(Dist::fixed(f64::NAN).sampler().is_err());
        assert!(Dist::Mixture { parts: vec![] }.sampler().is_err());
        assert!(
            Dist::LogNormal {
                median: 0.0,
                sigma: 1.0
            }
            .sampler()
            .is_err()
        );
    }
}
