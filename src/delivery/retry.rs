//! Retry policy: what to do after one delivery attempt.
//!
//! This module is pure policy, with no I/O and no clock of its own, so the
//! worker's behaviour can be tested exactly. It follows the semantics of
//! Svix's worker:
//!
//! * a 2xx response means the message is delivered;
//! * `410 Gone` means the receiver asks us to stop: the endpoint is disabled
//!   at once, without further retries;
//! * anything else (3xx, other 4xx, 5xx, timeouts, connection errors) is a
//!   failure that is retried after the next delay of the schedule, until the
//!   schedule is exhausted.
//!
//! Delays get random jitter so that many messages failing together do not
//! retry in lock-step. After `429 Too Many Requests` or a timeout the delay
//! is at least [`RetryPolicy::throttle_floor`], and a `Retry-After` header
//! can lengthen the delay (up to [`RetryPolicy::max_retry_after`]) but never
//! shorten it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How one attempt ended, as seen by the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered with this HTTP status code.
    Status(u16),
    /// No complete response arrived within the request timeout.
    Timeout,
    /// No response at all: connection refused, DNS failure, TLS failure,
    /// connection reset, refused by the SSRF guard, and the like.
    Connect,
}

/// What the worker should do next with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The receiver accepted the message (2xx).
    Delivered,
    /// The attempt failed; try again after this delay.
    RetryAfter(Duration),
    /// The attempt failed and the retry schedule is exhausted.
    GiveUp,
    /// The receiver answered `410 Gone`: stop and disable the endpoint at once.
    DisableWebhook,
}

/// Retry schedule and throttling limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the n-th failed attempt is `schedule[n-1]`; a failure
    /// beyond the end of the schedule gives up. The total number of attempts
    /// is therefore `schedule.len() + 1`.
    pub schedule: Vec<Duration>,
    /// Random jitter as a fraction of the delay: each delay is scaled by a
    /// uniform factor in `[1 - jitter, 1 + jitter]`. Values outside `[0, 1]`
    /// are clamped; NaN means no jitter. Default 0.2.
    pub jitter: f64,
    /// Upper bound on the delay a `Retry-After` header may impose. Default 1 hour.
    pub max_retry_after: Duration,
    /// Minimum delay after a 429 response or a timeout. Default 60 seconds.
    pub throttle_floor: Duration,
}

impl Default for RetryPolicy {
    /// Svix's schedule: retries after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
    /// 10 h (8 attempts over about 27.6 hours), 20% jitter, `Retry-After`
    /// capped at 1 hour, 60 s floor after throttling.
    fn default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 60 * MIN;
        RetryPolicy {
            schedule: [
                5,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            jitter: 0.2,
            max_retry_after: Duration::from_secs(HOUR),
            throttle_floor: Duration::from_secs(MIN),
        }
    }
}

impl RetryPolicy {
    /// attempts_made = number of attempts including the one just finished (>=1). Attempt n (1-based) failing is followed by schedule[n-1] if it exists, else GiveUp.
    ///
    /// `retry_after` is the parsed `Retry-After` header of the response, if
    /// any (see [`parse_retry_after`]). `attempts_made == 0` is treated as 1.
    pub fn decide(
        &self,
        result: &AttemptResult,
        attempts_made: u32,
        retry_after: Option<Duration>,
        rng: &mut impl rand::Rng,
    ) -> Verdict {
        let throttled = match *result {
            AttemptResult::Status(s) if is_success(s) => return Verdict::Delivered,
            AttemptResult::Status(410) => return Verdict::DisableWebhook,
            AttemptResult::Status(429) | AttemptResult::Timeout => true,
            AttemptResult::Status(_) | AttemptResult::Connect => false,
        };
        let index = usize::try_from(attempts_made.max(1) - 1).unwrap_or(usize::MAX);
        let Some(&base) = self.schedule.get(index) else {
            return Verdict::GiveUp;
        };
        let mut delay = self.jittered(base, rng);
        if throttled {
            delay = delay.max(self.throttle_floor);
        }
        if let Some(ra) = retry_after {
            delay = delay.max(ra.min(self.max_retry_after));
        }
        Verdict::RetryAfter(delay)
    }

    /// `base` scaled by a uniform random factor in `[1 - jitter, 1 + jitter]`.
    fn jittered(&self, base: Duration, rng: &mut impl rand::Rng) -> Duration {
        let jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        if jitter == 0.0 || base.is_zero() {
            return base;
        }
        let factor = rng.random_range((1.0 - jitter)..=(1.0 + jitter));
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
    }
}

/// True for 2xx status codes.
pub fn is_success(status: u16) -> bool {
    (200..=299).contains(&status)
}

/// Parses a Retry-After header: delta-seconds or an HTTP-date (relative to `now`). None when unparseable or negative.
///
/// All three HTTP-date forms of RFC 9110 are accepted (IMF-fixdate
/// `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`
/// and asctime `Sun Nov  6 08:49:37 1994`); the weekday is not checked.
/// A date in the past counts as negative. Delta-seconds too large for a
/// `u64` saturate.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let unix = parse_http_date(value)?;
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(unix).ok()?))?;
    at.duration_since(now).ok()
}

/// Parses an HTTP-date into Unix seconds.
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let (day, month, year, clock) = match parts.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [wd, day, mon, year, clock, "GMT"] if is_weekday(wd, true) && year.len() == 4 => {
            (num(day)?, month(mon)?, num(year)?, *clock)
        }
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [wd, date, clock, "GMT"] if is_weekday(wd, true) => {
            let mut it = date.split('-');
            let (day, mon, yy) = (it.next()?, it.next()?, it.next()?);
            if it.next().is_some() || yy.len() != 2 {
                return None;
            }
            let yy = num(yy)?;
            // RFC 9110: a two-digit year more than 50 years ahead is in the past.
            let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
            (num(day)?, month(mon)?, year, *clock)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [wd, mon, day, clock, year] if is_weekday(wd, false) && year.len() == 4 => {
            (num(day)?, month(mon)?, num(year)?, *clock)
        }
        _ => return None,
    };
    let mut hms = clock.split(':');
    let (h, m, sec) = (hms.next()?, hms.next()?, hms.next()?);
    if hms.next().is_some() || h.len() != 2 || m.len() != 2 || sec.len() != 2 {
        return None;
    }
    let year = i32::try_from(year).ok()?;
    let day = u8::try_from(day).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(num(h)?).ok()?,
        u8::try_from(num(m)?).ok()?,
        u8::try_from(num(sec)?).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// A weekday name followed by a comma (`with_comma`) or not: letters only.
fn is_weekday(token: &str, with_comma: bool) -> bool {
    let name = if with_comma {
        match token.strip_suffix(',') {
            Some(n) => n,
            None => return false,
        }
    } else {
        token
    };
    name.len() >= 3 && name.bytes().all(|b| b.is_ascii_alphabetic())
}

/// A short run (1 to 4) of ASCII digits.
fn num(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn month(s: &str) -> Option<time::Month> {
    use time::Month::*;
    const NAMES: [(&str, time::Month); 12] = [
        ("Jan", January),
        ("Feb", February),
        ("Mar", March),
        ("Apr", April),
        ("May", May),
        ("Jun", June),
        ("Jul", July),
        ("Aug", August),
        ("Sep", September),
        ("Oct", October),
        ("Nov", November),
        ("Dec", December),
    ];
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|&(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn no_jitter(schedule: &[u64]) -> RetryPolicy {
        RetryPolicy {
            schedule: schedule.iter().copied().map(secs).collect(),
            jitter: 0.0,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn default_policy_values() {
        let p = RetryPolicy::default();
        assert_eq!(p.schedule.len(), 7);
        assert_eq!(p.schedule[0], secs(5));
        assert_eq!(p.schedule[6], secs(36_000));
        assert_eq!(p.jitter, 0.2);
        assert_eq!(p.max_retry_after, secs(3600));
        assert_eq!(p.throttle_floor, secs(60));
    }

    #[test]
    fn success_and_gone() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(
                p.decide(&AttemptResult::Status(s), 1, None, &mut rng),
                Verdict::Delivered,
                "{s}"
            );
            // Even after the schedule is exhausted, a success is a success.
            assert_eq!(
                p.decide(&AttemptResult::Status(s), 99, None, &mut rng),
                Verdict::Delivered
            );
        }
        assert_eq!(
            p.decide(&AttemptResult::Status(410), 1, None, &mut rng),
            Verdict::DisableWebhook
        );
        assert_eq!(
            p.decide(&AttemptResult::Status(410), 99, Some(secs(5)), &mut rng),
            Verdict::DisableWebhook
        );
        assert!(is_success(200) && is_success(299));
        assert!(!is_success(199) && !is_success(300) && !is_success(0));
    }

    #[test]
    fn failures_walk_schedule_then_give_up() {
        let p = no_jitter(&[5, 300, 1800]);
        let mut rng = StdRng::seed_from_u64(2);
        for result in [
            AttemptResult::Status(500),
            AttemptResult::Status(503),
            AttemptResult::Status(404),
            AttemptResult::Status(400),
            AttemptResult::Status(301),
            AttemptResult::Status(100),
            AttemptResult::Connect,
        ] {
            assert_eq!(
                p.decide(&result, 0, None, &mut rng),
                Verdict::RetryAfter(secs(5)),
                "{result:?}"
            );
            assert_eq!(
                p.decide(&result, 1, None, &mut rng),
                Verdict::RetryAfter(secs(5))
            );
            assert_eq!(
                p.decide(&result, 2, None, &mut rng),
                Verdict::RetryAfter(secs(300))
            );
            assert_eq!(
                p.decide(&result, 3, None, &mut rng),
                Verdict::RetryAfter(secs(1800))
            );
            assert_eq!(p.decide(&result, 4, None, &mut rng), Verdict::GiveUp);
            assert_eq!(
                p.decide(&result, u32::MAX, Some(secs(1)), &mut rng),
                Verdict::GiveUp
            );
        }
        assert_eq!(
            no_jitter(&[]).decide(&AttemptResult::Connect, 1, None, &mut rng),
            Verdict::GiveUp
        );
    }

    #[test]
    fn jitter_stays_in_bounds_and_varies() {
        let p = RetryPolicy {
            schedule: vec![secs(100)],
            ..RetryPolicy::default()
        };
        let mut rng = StdRng::seed_from_u64(42);
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..10_000 {
            match p.decide(&AttemptResult::Status(500), 1, None, &mut rng) {
                Verdict::RetryAfter(d) => {
                    assert!(d >= secs(80) && d <= secs(120), "{d:?}");
                    lo = lo.min(d);
                    hi = hi.max(d);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // The samples spread over nearly the whole range.
        assert!(lo < secs(81) && hi > secs(119), "{lo:?}..{hi:?}");
        // Same seed, same delays.
        let mut a = StdRng::seed_from_u64(7);
        let mut b = StdRng::seed_from_u64(7);
        assert_eq!(
            p.decide(&AttemptResult::Connect, 1, None, &mut a),
            p.decide(&AttemptResult::Connect, 1, None, &mut b)
        );
    }

    #[test]
    fn odd_jitter_values_are_safe() {
        let mut rng = StdRng::seed_from_u64(3);
        for jitter in [f64::NAN, -1.0, 0.0] {
            let p = RetryPolicy {
                jitter,
                ..no_jitter(&[10])
            };
            assert_eq!(
                p.decide(&AttemptResult::Connect, 1, None, &mut rng),
                Verdict::RetryAfter(secs(10))
            );
        }
        for jitter in [5.0, f64::INFINITY] {
            let p = RetryPolicy {
                jitter,
                ..no_jitter(&[10])
            };
            match p.decide(&AttemptResult::Connect, 1, None, &mut rng) {
                Verdict::RetryAfter(d) => assert!(d <= secs(20), "{d:?}"),
                other => panic!("unexpected {other:?}"),
            }
        }
        let p = RetryPolicy {
            schedule: vec![Duration::MAX],
            ..RetryPolicy::default()
        };
        for _ in 0..100 {
            assert!(matches!(
                p.decide(&AttemptResult::Connect, 1, None, &mut rng),
                Verdict::RetryAfter(_)
            ));
        }
    }

    #[test]
    fn throttle_floor_after_429_and_timeout() {
        let p = no_jitter(&[5, 300]);
        let mut rng = StdRng::seed_from_u64(4);
        assert_eq!(
            p.decide(&AttemptResult::Status(429), 1, None, &mut rng),
            Verdict::RetryAfter(secs(60))
        );
        assert_eq!(
            p.decide(&AttemptResult::Timeout, 1, None, &mut rng),
            Verdict::RetryAfter(secs(60))
        );
        // The floor does not shorten longer delays...
        assert_eq!(
            p.decide(&AttemptResult::Status(429), 2, None, &mut rng),
            Verdict::RetryAfter(secs(300))
        );
        // ...and does not apply to other failures.
        assert_eq!(
            p.decide(&AttemptResult::Status(503), 1, None, &mut rng),
            Verdict::RetryAfter(secs(5))
        );
        assert_eq!(
            p.decide(&AttemptResult::Connect, 1, None, &mut rng),
            Verdict::RetryAfter(secs(5))
        );
        // Throttling does not extend the schedule.
        assert_eq!(
            p.decide(&AttemptResult::Status(429), 3, None, &mut rng),
            Verdict::GiveUp
        );
        // Floor applies on top of jitter.
        let j = RetryPolicy {
            schedule: vec![secs(5)],
            ..RetryPolicy::default()
        };
        assert_eq!(
            j.decide(&AttemptResult::Timeout, 1, None, &mut rng),
            Verdict::RetryAfter(secs(60))
        );
    }

    #[test]
    fn retry_after_lengthens_but_is_clamped() {
        let p = no_jitter(&[5, 7200]);
        let mut rng = StdRng::seed_from_u64(5);
        let d = |r: AttemptResult, n: u32, ra: u64, rng: &mut StdRng| {
            p.decide(&r, n, Some(secs(ra)), rng)
        };
        assert_eq!(
            d(AttemptResult::Status(503), 1, 120, &mut rng),
            Verdict::RetryAfter(secs(120))
        );
        assert_eq!(
            d(AttemptResult::Status(429), 1, 120, &mut rng),
            Verdict::RetryAfter(secs(120))
        );
        // Shorter than the computed delay: ignored.
        assert_eq!(
            d(AttemptResult::Status(429), 1, 10, &mut rng),
            Verdict::RetryAfter(secs(60))
        );
        assert_eq!(
            d(AttemptResult::Status(503), 1, 0, &mut rng),
            Verdict::RetryAfter(secs(5))
        );
        // Longer than max_retry_after: capped at one hour.
        assert_eq!(
            d(AttemptResult::Status(429), 1, 86_400, &mut rng),
            Verdict::RetryAfter(secs(3600))
        );
        assert_eq!(
            p.decide(
                &AttemptResult::Status(429),
                1,
                Some(Duration::MAX),
                &mut rng
            ),
            Verdict::RetryAfter(secs(3600))
        );
        // The cap limits Retry-After only, never the schedule.
        assert_eq!(
            d(AttemptResult::Status(503), 2, 86_400, &mut rng),
            Verdict::RetryAfter(secs(7200))
        );
    }

    #[test]
    fn parse_delta_seconds() {
        let now = SystemTime::UNIX_EPOCH + secs(1_000_000);
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        assert_eq!(parse_retry_after("  5 ", now), Some(secs(5)));
        assert_eq!(parse_retry_after("0", now), Some(secs(0)));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("+5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("abc", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("   ", now), None);
    }

    #[test]
    fn parse_http_dates() {
        // Wed, 21 Oct 2015 07:28:00 GMT is Unix time 1445412480.
        let at = SystemTime::UNIX_EPOCH + secs(1_445_412_480);
        let now = at - secs(90);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at),
            Some(secs(0))
        );
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now),
            Some(secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:00 2015", now),
            Some(secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed Oct  1 07:28:00 2015", now - secs(20 * 86_400)),
            Some(secs(90))
        );
        // In the past: negative.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at + secs(1)),
            None
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            None
        );
        // Malformed or impossible dates.
        for bad in [
            "Wed, 21 Oct 2015 07:28:00 PST",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 29 Feb 2015 07:28:00 GMT",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 24:00:00 GMT",
            "Wed, 21 Oct 2015 07:28 GMT",
            "Wed, 21 Oct 2015 07:28:00:00 GMT",
            "Wed, 21 Oct 15 07:28:00 GMT",
            "Wed 21 Oct 2015 07:28:00 GMT",
            "Wed, 21-Oct-2015 07:28:00 GMT",
            "2015-10-21T07:28:00Z",
            "Wed, ١٢ Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}
