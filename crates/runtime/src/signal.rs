//! Signal names and numbers as `kill` accepts them: `TERM`, `SIGTERM`, `15`, `RTMIN+3`.
//! Used by `berth-runc kill` and the engine's stop.

#[derive(Debug, thiserror::Error)]
#[error("unknown signal {0:?}")]
pub struct SignalError(pub String);

const NAMES: [(&str, i32); 34] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// Parses a signal name or number.
pub fn parse(s: &str) -> Result<i32, SignalError> {
    let err = || SignalError(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=SIGRTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(err())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Result<i32, SignalError> {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().map_err(|_| err())?
        };
        let n = base + sign * off;
        if (SIGRTMIN..=SIGRTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(err())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(SIGRTMIN, rest.strip_prefix('+').unwrap_or(rest), 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(SIGRTMAX, rest.strip_prefix('-').unwrap_or(rest), -1);
    }
    Err(err())
}

/// The short name of a signal number (`TERM`), for messages.
pub fn name(n: i32) -> String {
    NAMES
        .iter()
        .find(|(_, v)| *v == n)
        .map(|(s, _)| format!("SIG{s}"))
        .unwrap_or_else(|| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_parse() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGTERM").unwrap(), 15);
        assert_eq!(parse("sigusr1").unwrap(), 10);
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("RTMIN").unwrap(), 34);
        assert_eq!(parse("RTMIN+3").unwrap(), 37);
        assert_eq!(parse("SIGRTMAX-1").unwrap(), 63);
    }

    #[test]
    fn unknown_signal_is_rejected_in_runc_words() {
        assert_eq!(
            parse("FOO").unwrap_err().to_string(),
            r#"unknown signal "FOO""#
        );
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
        assert!(parse("RTMIN+40").is_err());
    }
}
