//! How numbers and text read on the status page.

use std::fmt::{self, Write};

/// Text from config or counters, escaped for HTML.
pub struct Html<'a>(pub &'a str);

impl fmt::Display for Html<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A count with thousands separated, as people read them.
pub struct Count(pub u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        for (i, d) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                f.write_char(',')?;
            }
            f.write_char(d)?;
        }
        Ok(())
    }
}

/// Seconds as ms below one second, else as seconds.
pub struct Secs(pub f64);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 * 1000.0;
        match ms {
            ms if ms < 10.0 => write!(f, "{ms:.2} ms"),
            ms if ms < 1000.0 => write!(f, "{ms:.0} ms"),
            _ => write!(f, "{:.2} s", self.0),
        }
    }
}

pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut n = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while n >= 1024.0 && unit + 1 < UNITS.len() {
            n /= 1024.0;
            unit += 1;
        }
        write!(f, "{n:.1} {}", UNITS[unit])
    }
}

pub struct Uptime(pub u64);

impl fmt::Display for Uptime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, h, m, s) = (
            self.0 / 86_400,
            self.0 / 3600 % 24,
            self.0 / 60 % 60,
            self.0 % 60,
        );
        match (d, h, m) {
            (0, 0, 0) => write!(f, "{s}s"),
            (0, 0, _) => write!(f, "{m}m {s:02}s"),
            (0, _, _) => write!(f, "{h}h {m:02}m"),
            _ => write!(f, "{d}d {h:02}h"),
        }
    }
}

/// A configured duration, written as its flag would be: `3s`, `1m`, `250ms`.
pub struct Flag(pub std::time::Duration);

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        match ms {
            0 => f.write_str("0"),
            ms if ms % 3_600_000 == 0 => write!(f, "{}h", ms / 3_600_000),
            ms if ms % 60_000 == 0 => write!(f, "{}m", ms / 60_000),
            ms if ms % 1000 == 0 => write!(f, "{}s", ms / 1000),
            ms => write!(f, "{ms}ms"),
        }
    }
}

/// Events per second: one decimal below 100, whole above.
pub struct Rate(pub f64);

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 100.0 {
            write!(f, "{:.1}/s", self.0)
        } else {
            write!(f, "{}/s", Count(self.0.round() as u64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            Html("<a href=\"x\">O'Neil & co</a>").to_string(),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
    }

    #[test]
    fn numbers_read_like_people_write_them() {
        assert_eq!(Count(0).to_string(), "0");
        assert_eq!(Count(999).to_string(), "999");
        assert_eq!(Count(1_234_567).to_string(), "1,234,567");
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(3 << 30).to_string(), "3.0 GiB");
        assert_eq!(Secs(0.0012).to_string(), "1.20 ms");
        assert_eq!(Secs(0.25).to_string(), "250 ms");
        assert_eq!(Secs(2.5).to_string(), "2.50 s");
        assert_eq!(Uptime(59).to_string(), "59s");
        assert_eq!(Uptime(3725).to_string(), "1h 02m");
        assert_eq!(Uptime(90_000).to_string(), "1d 01h");
        assert_eq!(Rate(2.25).to_string(), "2.2/s");
        let d = std::time::Duration::from_millis;
        assert_eq!(Flag(d(3000)).to_string(), "3s");
        assert_eq!(Flag(d(60_000)).to_string(), "1m");
        assert_eq!(Flag(d(1500)).to_string(), "1500ms");
        assert_eq!(Rate(12_345.4).to_string(), "12,345/s");
    }
}
