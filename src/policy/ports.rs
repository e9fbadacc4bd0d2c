//! The `to-ports` attribute (docs/protocol.md §4): `*`, or a comma list of ports 1-65535 and
//! inclusive ranges `low-high` with low ≤ high. Shared by the validator and `--allow`.

use std::fmt;

use super::ToPorts;

impl ToPorts {
    /// Parses a `to-ports` value: `*`, or a comma-separated list of ports and ranges.
    ///
    /// Spaces around items and around the `-` of a range are accepted (whether players
    /// accept them is unconfirmed; the validator warns about them). Items keep the order
    /// they were written in.
    ///
    /// # Errors
    ///
    /// Returns the reason, starting with the quoted item at fault, when the value is
    /// empty, has an empty item (`80,,81`), a port outside 1-65535, a range whose low
    /// end is above its high end, or anything that is not digits.
    pub fn parse(text: &str) -> Result<ToPorts, String> {
        if text.trim_matches(' ') == "*" {
            return Ok(ToPorts::Any);
        }
        if text.trim_matches(' ').is_empty() {
            return Err(format!("{} is empty", super::quote(text)));
        }
        let mut ranges = Vec::new();
        for item in text.split(',') {
            let item = item.trim_matches(' ');
            if item.is_empty() {
                return Err(format!("{} has an empty item", super::quote(text)));
            }
            ranges.push(parse_item(item)?);
        }
        Ok(ToPorts::Ranges(ranges))
    }

    /// Whether `port` is granted.
    pub fn contains(&self, port: u16) -> bool {
        match self {
            ToPorts::Any => true,
            ToPorts::Ranges(ranges) => ranges.iter().any(|&(lo, hi)| lo <= port && port <= hi),
        }
    }
}

/// Renders the canonical form: `*`, or items joined by `,` without spaces, a single
/// port as `80` and a range as `8000-8100`.
impl fmt::Display for ToPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToPorts::Any => f.write_str("*"),
            ToPorts::Ranges(ranges) => {
                for (i, &(lo, hi)) in ranges.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    if lo == hi {
                        write!(f, "{lo}")?;
                    } else {
                        write!(f, "{lo}-{hi}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// One item of the list: `80` or `8000-8100`.
fn parse_item(item: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = match item.split_once('-') {
        None => (item, item),
        Some((lo, hi)) => (lo.trim_matches(' '), hi.trim_matches(' ')),
    };
    match (parse_port(lo), parse_port(hi)) {
        (Some(lo), Some(hi)) if lo <= hi => Ok((lo, hi)),
        (Some(_), Some(_)) => Err(format!(
            "{} is not a port or range (low end above high end)",
            super::quote(item)
        )),
        _ => {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            let hint = if digits(lo) && digits(hi) {
                " (ports are 1-65535)"
            } else {
                ""
            };
            Err(format!(
                "{} is not a port or range{hint}",
                super::quote(item)
            ))
        }
    }
}

/// A port 1-65535 written in ASCII digits only (no sign, no spaces inside).
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros are harmless; cap the digit count so the value cannot overflow.
    let digits = text.trim_start_matches('0');
    if digits.len() > 5 {
        return None;
    }
    let value: u32 = digits
        .bytes()
        .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'));
    match u16::try_from(value) {
        Ok(0) | Err(_) => None,
        Ok(port) => Some(port),
    }
}

#[cfg(test)]
mod tests {
    use super::ToPorts;

    fn ranges(r: &[(u16, u16)]) -> ToPorts {
        ToPorts::Ranges(r.to_vec())
    }

    #[test]
    fn star_and_lists() {
        assert_eq!(ToPorts::parse("*"), Ok(ToPorts::Any));
        assert_eq!(ToPorts::parse("843"), Ok(ranges(&[(843, 843)])));
        assert_eq!(
            ToPorts::parse("843,8080,9000-9100"),
            Ok(ranges(&[(843, 843), (8080, 8080), (9000, 9100)]))
        );
        assert_eq!(
            ToPorts::parse("123,456-458"),
            Ok(ranges(&[(123, 123), (456, 458)]))
        );
        assert_eq!(ToPorts::parse("1-65535"), Ok(ranges(&[(1, 65535)])));
        assert_eq!(ToPorts::parse("5-5"), Ok(ranges(&[(5, 5)])));
        assert_eq!(ToPorts::parse("80, 81"), Ok(ranges(&[(80, 80), (81, 81)])));
        assert_eq!(ToPorts::parse("0080"), Ok(ranges(&[(80, 80)])));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            " ",
            "0",
            "65536",
            "99999999999",
            "80-",
            "-5",
            "9-3",
            "80,,81",
            "80,",
            ",80",
            "x",
            "8o",
            "+80",
            "80-90-100",
            "1-65536",
            "0-10",
            "**",
            "*,80",
            "８０",
        ] {
            assert!(ToPorts::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn reasons_name_the_item() {
        assert_eq!(
            ToPorts::parse("80-"),
            Err("\"80-\" is not a port or range".to_string())
        );
        assert_eq!(
            ToPorts::parse("80,x"),
            Err("\"x\" is not a port or range".to_string())
        );
        assert_eq!(
            ToPorts::parse("80,,81"),
            Err("\"80,,81\" has an empty item".to_string())
        );
    }

    #[test]
    fn contains() {
        let p = ranges(&[(80, 80), (8000, 8100)]);
        assert!(p.contains(80) && p.contains(8000) && p.contains(8100) && p.contains(8050));
        assert!(!p.contains(81) && !p.contains(7999) && !p.contains(8101) && !p.contains(0));
        assert!(ToPorts::Any.contains(1) && ToPorts::Any.contains(65535));
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(ToPorts::Any.to_string(), "*");
        assert_eq!(
            ranges(&[(80, 80), (8000, 8100)]).to_string(),
            "80,8000-8100"
        );
        let parsed = ToPorts::parse(" 80 , 8000 - 8100").map(|p| p.to_string());
        assert_eq!(parsed, Ok("80,8000-8100".to_string()));
    }
}
