//! Timestamps as Go's `time` package reads and prints them for sops: go-yaml's timestamp
//! forms on input, RFC 3339 (with nanoseconds, `Z` for a zero offset) on output.

/// A wall-clock time with the offset it was written with (Go keeps a fixed zone).
#[derive(Debug, Clone, PartialEq)]
pub struct Timestamp {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Offset east of UTC in minutes; 0 prints as `Z`.
    offset_minutes: i32,
}

impl Timestamp {
    /// go-yaml's `parseTimestamp`: `2006-1-2T15:4:5.999999999Z07:00` (also with `t` or a
    /// space and no zone) or a bare `2006-1-2` date.
    pub fn parse_yaml(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
            return None;
        }
        let mut p = Cursor { b, i: 0 };
        let (year, month, day) = p.date(false)?;
        let date_only = Timestamp {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            nanos: 0,
            offset_minutes: 0,
        };
        if p.done() {
            return date_only.checked();
        }
        let sep = p.next()?;
        let zoned = match sep {
            b'T' | b't' => true,
            b' ' => false,
            _ => return None,
        };
        let (hour, minute, second, nanos) = p.time(false)?;
        let offset_minutes = if zoned { p.zone()? } else { 0 };
        p.done().then_some(())?;
        Timestamp {
            hour,
            minute,
            second,
            nanos,
            offset_minutes,
            ..date_only
        }
        .checked()
    }

    /// Go's `time.Parse(time.RFC3339, s)` (which also takes fractional seconds).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let mut p = Cursor {
            b: text.as_bytes(),
            i: 0,
        };
        let (year, month, day) = p.date(true)?;
        (p.next()? == b'T').then_some(())?;
        let (hour, minute, second, nanos) = p.time(true)?;
        let offset_minutes = p.zone()?;
        p.done().then_some(())?;
        Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset_minutes,
        }
        .checked()
    }

    /// The time if Go's parser would accept its fields (month, day of month, clock).
    fn checked(self) -> Option<Timestamp> {
        let valid = (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60;
        valid.then_some(self)
    }

    /// `time.RFC3339Nano`: trailing zeros of the fraction dropped.
    pub fn rfc3339_nano(&self) -> String {
        let mut fraction = String::new();
        if self.nanos > 0 {
            fraction = format!(".{:09}", self.nanos);
            while fraction.ends_with('0') {
                fraction.pop();
            }
        }
        format!("{}{fraction}{}", self.date_time(), self.zone())
    }

    /// `time.RFC3339`: no fraction.
    pub fn rfc3339(&self) -> String {
        format!("{}{}", self.date_time(), self.zone())
    }

    fn date_time(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    fn zone(&self) -> String {
        if self.offset_minutes == 0 {
            return "Z".into();
        }
        let sign = if self.offset_minutes < 0 { '-' } else { '+' };
        let m = self.offset_minutes.unsigned_abs();
        format!("{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// One or two digits, or exactly `fixed` digits when fixed-width.
    fn number(&mut self, fixed: Option<usize>) -> Option<u32> {
        let start = self.i;
        let max = fixed.unwrap_or(2);
        while self.i < self.b.len() && self.i - start < max && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 || fixed.is_some_and(|f| n != f) {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn date(&mut self, strict: bool) -> Option<(u32, u32, u32)> {
        let two = strict.then_some(2);
        let year = self.number(Some(4))?;
        self.expect(b'-')?;
        let month = self.number(two)?;
        self.expect(b'-')?;
        let day = self.number(two)?;
        Some((year, month, day))
    }

    fn time(&mut self, strict: bool) -> Option<(u32, u32, u32, u32)> {
        let two = strict.then_some(2);
        let hour = self.number(two)?;
        self.expect(b':')?;
        let minute = self.number(two)?;
        self.expect(b':')?;
        let second = self.number(two)?;
        let mut nanos = 0;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            let start = self.i;
            while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
                self.i += 1;
            }
            let digits = &self.b[start..self.i];
            if digits.is_empty() || digits.len() > 9 {
                return None;
            }
            let padded = format!("{:0<9}", std::str::from_utf8(digits).ok()?);
            nanos = padded.parse().ok()?;
        }
        Some((hour, minute, second, nanos))
    }

    fn zone(&mut self) -> Option<i32> {
        let sign = match self.next()? {
            b'Z' => return Some(0),
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let hours = self.number(Some(2))? as i32;
        self.expect(b':')?;
        let minutes = self.number(Some(2))? as i32;
        (hours < 24 && minutes < 60).then_some(sign * (hours * 60 + minutes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_go_does() {
        let t = Timestamp::parse_yaml("2001-12-14t21:59:43.10-05:00").unwrap();
        assert_eq!(t.rfc3339_nano(), "2001-12-14T21:59:43.1-05:00");
        assert_eq!(t.rfc3339(), "2001-12-14T21:59:43-05:00");
        let d = Timestamp::parse_yaml("2002-1-2").unwrap();
        assert_eq!(d.rfc3339_nano(), "2002-01-02T00:00:00Z");
        let s = Timestamp::parse_yaml("2002-12-14 21:59:43.000000001").unwrap();
        assert_eq!(s.rfc3339_nano(), "2002-12-14T21:59:43.000000001Z");
        let z = Timestamp::parse_rfc3339("2026-11-26T15:40:14+00:00").unwrap();
        assert_eq!(z.rfc3339(), "2026-11-26T15:40:14Z");
        assert!(Timestamp::parse_yaml("2001-02-30").is_none());
        assert!(Timestamp::parse_rfc3339("2026-1-26T15:40:14Z").is_none());
    }
}
