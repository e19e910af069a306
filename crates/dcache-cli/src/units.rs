//! Human units on the command line: durations (`1h30m`, `500ms`, `90`) and sizes (`2GiB`,
//! `10MB`, `4096`), and readable durations in text output.

use std::time::Duration;

/// Parses a duration: a number of seconds (`90`, `1.5`), or numbers with units `ms`, `s`,
/// `m`, `h`, `d`, `w` run together (`1h30m`, `500ms`, `2d`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("an empty duration; give e.g. 90, 1.5, 500ms, 1h30m".to_owned());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{text:?}: seconds must be a non-negative finite number"));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!(
                "{text:?} is not a duration; give e.g. 90 (seconds), 1.5, 500ms, 1h30m, 2d"
            ));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("{text:?}: {:?} is not a number", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "" => {
                return Err(format!(
                    "{text:?}: {number} needs a unit (ms, s, m, h, d, w) after another part"
                ));
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use ms, s, m, h, d or w)"
                ));
            }
        };
        total += number * scale;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("{text:?} is too long"))
}

/// Parses a size in bytes: a plain number, or with a unit: `B`, `KB`/`MB`/`GB`/`TB` (powers
/// of 1000), `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB` (powers of 1024). Case-insensitive;
/// a space before the unit is allowed.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let number_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    if number_len == 0 {
        return Err(format!(
            "{text:?} is not a size; give e.g. 4096, 10MB, 2GiB"
        ));
    }
    let number: f64 = s[..number_len]
        .parse()
        .map_err(|_| format!("{text:?}: {:?} is not a number", &s[..number_len]))?;
    let unit = s[number_len..].trim().to_ascii_lowercase();
    let scale: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    let bytes = (number * scale).round();
    if bytes >= 18_446_744_073_709_551_615.0 {
        return Err(format!("{text:?} is too large"));
    }
    if unit.is_empty() && number.fract() != 0.0 {
        return Err(format!("{text:?}: a number of bytes is a whole number"));
    }
    Ok(bytes as u64)
}

/// A duration for people: `850ms`, `12s`, `4m05s`, `1h30m`, `3d04h`.
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    if secs < 60 {
        return format!("{secs}s");
    }
    let (m, s) = (secs / 60, secs % 60);
    if m < 60 {
        return format!("{m}m{s:02}s");
    }
    let (h, m) = (m / 60, m % 60);
    if h < 24 {
        return format!("{h}h{m:02}m");
    }
    format!("{}d{:02}h", h / 24, h % 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("inf").is_err());
        assert!(parse_duration("1h30").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1.5 KiB"), Ok(1536));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert!(parse_size("1.5").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_secs(12)), "12s");
        assert_eq!(human_duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(human_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(human_duration(Duration::from_secs(273_600)), "3d04h");
    }
}
