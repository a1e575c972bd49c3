//! Retries of transient provider errors: exponential backoff with full jitter, honouring
//! retry-after. The caller sees each retry as an event.

use std::time::Duration;

use super::LlmError;
use crate::events::{Event, Events};

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; doubled each retry.
    pub base: Duration,
    /// No single wait is longer than this (retry-after included).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1).
    pub fn delay(&self, attempt: u32, err: &LlmError) -> Duration {
        if let Some(after) = err.retry_after() {
            return after.min(self.max_delay);
        }
        let exp = self.base.saturating_mul(1u32 << (attempt - 1).min(16));
        let capped = exp.min(self.max_delay);
        // Half fixed, half random: spreads clients apart without ever waiting near zero.
        let half = capped / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Run `op` until it succeeds, fails terminally, or attempts run out.
    pub async fn run<T, F, Fut>(
        &self,
        label: &str,
        events: &Events,
        mut op: F,
    ) -> Result<T, LlmError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, LlmError>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt < self.max_attempts => {
                    let delay = self.delay(attempt, &e);
                    events.emit(Event::Retry {
                        label: label.to_string(),
                        attempt: attempt + 1,
                        max_attempts: self.max_attempts,
                        delay_ms: delay.as_millis() as u64,
                        reason: e.short(),
                    });
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) if e.is_transient() => {
                    return Err(LlmError::RetriesExhausted {
                        attempts: attempt,
                        last: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, after: Option<u64>) -> LlmError {
        LlmError::Api {
            status,
            kind: "x".into(),
            message: "m".into(),
            retry_after: after.map(Duration::from_secs),
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 6,
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
        };
        let d1 = p.delay(1, &api(529, None));
        let d3 = p.delay(3, &api(529, None));
        assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1));
        assert!(d3 >= Duration::from_secs(2) && d3 <= Duration::from_secs(4));
        assert!(p.delay(10, &api(529, None)) <= Duration::from_secs(5));
    }

    #[test]
    fn retry_after_wins() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, &api(429, Some(7))), Duration::from_secs(7));
    }

    #[test]
    fn terminal_statuses_are_not_retried() {
        for s in [400, 401, 403, 404, 413] {
            assert!(!api(s, None).is_transient(), "{s}");
        }
        for s in [408, 409, 429, 500, 503, 529] {
            assert!(api(s, None).is_transient(), "{s}");
        }
    }
}
