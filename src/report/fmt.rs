//! How the report writes numbers and text: thousands separators, money in minor units with its
//! currency, percentages that never say NaN, times, and HTML escaping. Every function is total:
//! a zero denominator or an unknown currency still gives readable text.

/// `1234567` -> `"1,234,567"`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` with its noun: `"1 order"`, `"2,048 orders"`.
pub fn plural(n: u64, noun: &str) -> String {
    format!("{} {noun}{}", count(n), if n == 1 { "" } else { "s" })
}

/// How many digits of `currency`'s minor unit make one major unit (ISO 4217; 2 when unknown).
pub fn minor_digits(currency: &str) -> u32 {
    const ZERO: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
        "VUV", "XAF", "XOF", "XPF",
    ];
    const THREE: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    if ZERO.contains(&currency) {
        0
    } else if THREE.contains(&currency) {
        3
    } else {
        2
    }
}

/// Integer minor units as money: `(123456, "USD")` -> `"$1,234.56"`, `(500, "JPY")` -> `"¥500"`,
/// `(1999, "CHF")` -> `"19.99 CHF"`. Exact (no floating point), for every `u64`.
pub fn money(cents: u64, currency: &str) -> String {
    let digits = minor_digits(currency);
    let unit = 10u64.pow(digits);
    let major = count(cents / unit);
    let amount = if digits == 0 {
        major
    } else {
        format!("{major}.{:0width$}", cents % unit, width = digits as usize)
    };
    let symbol = match currency {
        "USD" => Some("$"),
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        "JPY" => Some("¥"),
        "INR" => Some("₹"),
        "KRW" => Some("₩"),
        _ => None,
    };
    match symbol {
        Some(s) => format!("{s}{amount}"),
        None => format!("{amount} {currency}"),
    }
}

/// `part` as a share of `whole`, in percent; `None` when `whole` is zero (nothing to share).
pub fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// A percentage rounded to a whole number, but never rounded to a claim it cannot make: a
/// share above 0 below 0.5 is `"<1%"`, one just under 100 is `">99%"`. `None` is `"–"`.
pub fn percent(p: Option<f64>) -> String {
    match p {
        None => "–".into(),
        Some(p) if !p.is_finite() => "–".into(),
        Some(p) if p > 0.0 && p < 0.5 => "<1%".into(),
        Some(p) if (99.5..100.0).contains(&p) => ">99%".into(),
        Some(p) => format!("{:.0}%", p),
    }
}

/// `part` of `whole` as [`percent`] writes it.
pub fn percent_of(part: u64, whole: u64) -> String {
    percent(share(part, whole))
}

/// A duration since the show's start: `"0:42"`, `"12:05"`, `"1:02:03"`.
pub fn elapsed(ms: u64) -> String {
    let s = ms / 1000;
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Unix milliseconds as a UTC date and time: `"2025-12-02 00:00 UTC"`.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02} {h:02}:{m:02} UTC")
}

/// `s` safe as HTML text or a quoted attribute value: `& < > " '` are escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(4210), "4,210");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(plural(1, "order"), "1 order");
        assert_eq!(plural(0, "unit"), "0 units");
        assert_eq!(plural(1200, "tap"), "1,200 taps");
    }

    #[test]
    fn money_is_exact_minor_units_with_the_currency() {
        assert_eq!(money(123_456, "USD"), "$1,234.56");
        assert_eq!(money(5, "USD"), "$0.05");
        assert_eq!(money(0, "EUR"), "€0.00");
        assert_eq!(money(500, "JPY"), "¥500");
        assert_eq!(money(1999, "CHF"), "19.99 CHF");
        assert_eq!(money(1_234, "KWD"), "1.234 KWD");
        assert_eq!(money(u64::MAX, "USD"), "$184,467,440,737,095,516.15");
    }

    #[test]
    fn percentages_never_say_nan_or_round_to_a_false_claim() {
        assert_eq!(percent_of(0, 0), "–");
        assert_eq!(percent_of(3, 100), "3%");
        assert_eq!(percent_of(1, 1000), "<1%");
        assert_eq!(percent_of(0, 1000), "0%");
        assert_eq!(percent_of(999, 1000), ">99%");
        assert_eq!(percent_of(7, 7), "100%");
        assert_eq!(percent_of(9, 7), "129%");
        assert_eq!(percent(Some(f64::NAN)), "–");
    }

    #[test]
    fn times_read_as_elapsed_and_utc() {
        assert_eq!(elapsed(42_000), "0:42");
        assert_eq!(elapsed(725_000), "12:05");
        assert_eq!(elapsed(3_723_000), "1:02:03");
        assert_eq!(utc(1_764_633_600_000), "2025-12-02 00:00 UTC");
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x&'y")</script>"#),
            "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;"
        );
    }
}
