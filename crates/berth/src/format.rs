//! Human-readable figures as the Docker CLI prints them (go-units' HumanSize and
//! HumanDuration), and simple column tables.

/// `141MB`, `4.26MB`, `1.2kB`: decimal units, four significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(value, 4), UNITS[unit])
}

/// `value` with at most `digits` significant digits and no trailing zeros (Go's `%.4g`).
fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs().log10().floor() as i32 + 1;
    let decimals = (digits - magnitude).max(0) as usize;
    let s = format!("{value:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `2 years ago`, `About an hour ago`, `Less than a second ago`.
pub fn human_since(seconds: u64) -> String {
    let d = seconds;
    let (m, h, day) = (60, 3600, 86400);
    let text = match d {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        s if s < m => format!("{s} seconds"),
        s if s < 2 * m => "About a minute".to_string(),
        s if s < h => format!("{} minutes", s / m),
        s if s < 2 * h => "About an hour".to_string(),
        s if s < 2 * day => format!("{} hours", s / h),
        s if s < 7 * 2 * day => format!("{} days", s / day),
        s if s < 30 * 3 * day => format!("{} weeks", s / (7 * day)),
        s if s < 365 * 2 * day => format!("{} months", s / (30 * day)),
        s => format!("{} years", s / (365 * day)),
    };
    format!("{text} ago")
}

/// Seconds since an RFC 3339 time, if it parses.
pub fn seconds_since(rfc3339: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z').split('+').next()?)
        .or_else(|_| humantime::parse_rfc3339_weak(rfc3339))
        .ok()?;
    Some(
        std::time::SystemTime::now()
            .duration_since(t)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Prints rows as left-aligned columns separated by three spaces, like Docker's tables.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}   "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_200), "1.2kB");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(141_512_345), "141.5MB");
        assert_eq!(human_size(1_000_000_000), "1GB");
    }

    #[test]
    fn durations_match_docker() {
        assert_eq!(human_since(0), "Less than a second ago");
        assert_eq!(human_since(90), "About a minute ago");
        assert_eq!(human_since(5 * 3600), "5 hours ago");
        assert_eq!(human_since(3 * 86400), "3 days ago");
        assert_eq!(human_since(800 * 86400), "2 years ago");
    }
}
