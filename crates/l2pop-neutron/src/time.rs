//! Wall-clock time as an input: the edges read the clock and hand a [`Time`] in; nothing in the
//! resource layer reads a clock. Shown as Neutron's API shows timestamps.

use std::fmt;

/// Whole seconds since the Unix epoch (UTC).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Time(pub u64);

impl Time {
    /// Parses Neutron's API timestamp (`2026-11-21T10:47:02Z`, the form [`Time`] displays); `None`
    /// for anything else.
    pub fn parse_neutron(text: &str) -> Option<Time> {
        let bytes = text.as_bytes();
        if bytes.len() != 20 || bytes[19] != b'Z' || bytes[10] != b'T' {
            return None;
        }
        let number = |range: std::ops::Range<usize>| -> Option<u64> {
            text.get(range)?.bytes().try_fold(0u64, |n, b| {
                b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
            })
        };
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
        if separators.iter().any(|(at, c)| bytes[*at] != *c)
            || !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
            || year < 1970
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        Some(Time(days * 86_400 + hour * 3_600 + minute * 60 + second))
    }

    /// `self` plus `seconds`.
    pub fn plus(self, seconds: u64) -> Time {
        Time(self.0.saturating_add(seconds))
    }

    /// `self` minus `seconds`, not below the epoch.
    pub fn minus(self, seconds: u64) -> Time {
        Time(self.0.saturating_sub(seconds))
    }
}

/// `2026-11-21T10:47:02Z`: Neutron's API timestamp, seconds precision.
impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, rest) = (self.0 / 86_400, self.0 % 86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rest / 3_600,
            rest % 3_600 / 60,
            rest % 60
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::Time;

    #[test]
    fn shows_and_reads_neutron_timestamps() {
        // 2026-11-21T10:47:02Z, and a leap day.
        assert_eq!(Time(1_795_258_022).to_string(), "2026-11-21T10:47:02Z");
        assert_eq!(Time(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Time(0).to_string(), "1970-01-01T00:00:00Z");
        for t in [0, 951_782_400, 1_795_258_022, 4_102_444_799] {
            assert_eq!(Time::parse_neutron(&Time(t).to_string()), Some(Time(t)));
        }
        for bad in [
            "",
            "2026-11-21 10:47:02",
            "2026-13-01T00:00:00Z",
            "2026-11-21T10:47:0xZ",
        ] {
            assert_eq!(Time::parse_neutron(bad), None, "{bad}");
        }
    }
}
