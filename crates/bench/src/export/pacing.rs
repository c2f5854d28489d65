//! How long to wait before asking for an export's status again: the server's
//! `Retry-After` within a floor and a ceiling, else a wait that grows.

use std::time::{Duration, SystemTime};

/// The longest wait between two polls, whatever the server asks for.
pub const CEILING: Duration = Duration::from_secs(60);
/// The shortest, whatever `--poll-interval` says.
pub const MIN_FLOOR: Duration = Duration::from_millis(100);

/// `Retry-After` as a wait from `now`: delay-seconds (`120`) or an HTTP-date (a date in
/// the past is no wait); `None` when absent or not understood.
pub fn retry_after(value: Option<&str>, now: SystemTime) -> Option<Duration> {
    let value = value?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The waits between polls.
#[derive(Debug, Clone)]
pub struct Pacing {
    floor: Duration,
    ceiling: Duration,
    last: Option<Duration>,
}

impl Pacing {
    /// Waits of at least `floor` (`--poll-interval`, and no less than [`MIN_FLOOR`]) and
    /// at most [`CEILING`] (or `floor`, when that is longer).
    pub fn new(floor: Duration) -> Self {
        let floor = floor.max(MIN_FLOOR);
        Self {
            floor,
            ceiling: CEILING.max(floor),
            last: None,
        }
    }

    /// The wait before the next poll: what the server asked for, within the bounds;
    /// without an answer, the floor the first time and half as long again as the last
    /// wait after that.
    pub fn next(&mut self, asked: Option<Duration>) -> Duration {
        let wait = match (asked, self.last) {
            (Some(asked), _) => asked,
            (None, None) => self.floor,
            (None, Some(last)) => last + last / 2,
        }
        .clamp(self.floor, self.ceiling);
        self.last = Some(wait);
        wait
    }
}
