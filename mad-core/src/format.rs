//! Turning numbers into text with Qlik format codes and a locale, and dates into day serials.
//!
//! Number codes: `#,##0.00`, `0.0%`, `$#,##0;-$#,##0` (a second section for negatives), literal
//! prefixes and suffixes. Date and time codes: `YYYY YY MMMM MMM MM M DD D WWWW WWW hh h mm ss
//! fff tt`. The code is written with `,` for thousands and `.` for decimals (or with the
//! separators a [`NumberFormat`] names); the output uses the locale's separators.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::value::{NumberFormat, Value};

/// Days from 0000-03-01 style civil dates to the Qlik/Excel serial epoch, 1899-12-30.
const SERIAL_EPOCH_DAYS: i64 = -25569; // days from 1970-01-01 back to 1899-12-30, negated

/// The separators and names a recipient expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locale {
    pub tag: String,
    pub decimal: char,
    pub thousands: char,
    /// The default code for dates without their own format.
    pub date_code: &'static str,
    pub month_names: [&'static str; 12],
    pub day_names: [&'static str; 7],
}

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const EN_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const DE_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const DE_DAYS: [&str; 7] = [
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
];
const FR_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const FR_DAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];

const ES_MONTHS: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const ES_DAYS: [&str; 7] = [
    "lunes",
    "martes",
    "miércoles",
    "jueves",
    "viernes",
    "sábado",
    "domingo",
];
const IT_MONTHS: [&str; 12] = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
];
const IT_DAYS: [&str; 7] = [
    "lunedì",
    "martedì",
    "mercoledì",
    "giovedì",
    "venerdì",
    "sabato",
    "domenica",
];
const PT_MONTHS: [&str; 12] = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
];
const PT_DAYS: [&str; 7] = [
    "segunda-feira",
    "terça-feira",
    "quarta-feira",
    "quinta-feira",
    "sexta-feira",
    "sábado",
    "domingo",
];
const NL_MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const NL_DAYS: [&str; 7] = [
    "maandag",
    "dinsdag",
    "woensdag",
    "donderdag",
    "vrijdag",
    "zaterdag",
    "zondag",
];
const PL_MONTHS: [&str; 12] = [
    "styczeń",
    "luty",
    "marzec",
    "kwiecień",
    "maj",
    "czerwiec",
    "lipiec",
    "sierpień",
    "wrzesień",
    "październik",
    "listopad",
    "grudzień",
];
const PL_DAYS: [&str; 7] = [
    "poniedziałek",
    "wtorek",
    "środa",
    "czwartek",
    "piątek",
    "sobota",
    "niedziela",
];

impl Default for Locale {
    fn default() -> Self {
        Locale::new("en-US")
    }
}

impl Locale {
    /// The locale for a BCP 47 tag such as `en-US`, `de-DE`, `fr-FR` or `sv-SE`, refusing text
    /// that is not a language tag at all (`"Germany"`, `"de DE"`, an empty string), which is
    /// almost always a mistake in a recipient list. A well-formed tag for a language without
    /// its own conventions here gets English separators and ISO dates, as [`Locale::new`].
    pub fn parse(tag: &str) -> Result<Self> {
        let mut subtags = tag.split(['-', '_']);
        let language = subtags.next().unwrap_or("");
        let language_ok =
            (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_alphabetic());
        let rest_ok = subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
        if language_ok && rest_ok {
            Ok(Locale::new(tag))
        } else {
            Err(Error::invalid_config(format!(
                "'{tag}' is not a locale; write a language tag such as en-US, de-DE or fr-CH"
            )))
        }
    }

    /// The locale for a BCP 47 tag such as `en-US`, `de-DE`, `fr-FR` or `sv-SE`; language and
    /// region match whatever their case (`en-us` is `en-US`). Month and day names are German,
    /// French, Spanish, Italian, Portuguese, Dutch or Polish for those languages, English for
    /// the others. Separators and the date order follow the language (and Swiss German's
    /// region) for most European languages and for Japanese, Chinese and Korean; other tags
    /// fall back to English separators with ISO dates.
    pub fn new(tag: &str) -> Self {
        let mut subtags = tag.split(['-', '_']);
        let lang = subtags.next().unwrap_or("").to_ascii_lowercase();
        let region = subtags.find(|s| is_region(s)).map(str::to_ascii_uppercase);
        let (decimal, thousands, date_code, months, days) = match lang.as_str() {
            "en" if region.as_deref() == Some("US") => ('.', ',', "M/D/YYYY", EN_MONTHS, EN_DAYS),
            "en" => ('.', ',', "DD/MM/YYYY", EN_MONTHS, EN_DAYS),
            "de" if matches!(region.as_deref(), Some("CH" | "LI")) => {
                ('.', '\u{2019}', "DD.MM.YYYY", DE_MONTHS, DE_DAYS)
            }
            "de" => (',', '.', "DD.MM.YYYY", DE_MONTHS, DE_DAYS),
            "fr" => (',', '\u{202f}', "DD/MM/YYYY", FR_MONTHS, FR_DAYS),
            "sv" | "fi" | "nb" | "no" | "da" => (',', '\u{a0}', "YYYY-MM-DD", EN_MONTHS, EN_DAYS),
            "es" => (',', '.', "DD/MM/YYYY", ES_MONTHS, ES_DAYS),
            "it" => (',', '.', "DD/MM/YYYY", IT_MONTHS, IT_DAYS),
            "pt" => (',', '.', "DD/MM/YYYY", PT_MONTHS, PT_DAYS),
            "nl" => (',', '.', "DD/MM/YYYY", NL_MONTHS, NL_DAYS),
            "pl" => (',', '\u{a0}', "DD.MM.YYYY", PL_MONTHS, PL_DAYS),
            "cs" | "sk" | "ru" | "uk" | "bg" => (',', '\u{a0}', "DD.MM.YYYY", EN_MONTHS, EN_DAYS),
            "el" => (',', '.', "DD/MM/YYYY", EN_MONTHS, EN_DAYS),
            "tr" | "ro" | "hr" | "sl" | "sr" => (',', '.', "DD.MM.YYYY", EN_MONTHS, EN_DAYS),
            "hu" => (',', '\u{a0}', "YYYY.MM.DD", EN_MONTHS, EN_DAYS),
            "ja" | "zh" | "ko" => ('.', ',', "YYYY/MM/DD", EN_MONTHS, EN_DAYS),
            _ => ('.', ',', "YYYY-MM-DD", EN_MONTHS, EN_DAYS),
        };
        Locale {
            tag: tag.to_string(),
            decimal,
            thousands,
            date_code,
            month_names: months,
            day_names: days,
        }
    }
}

/// Whether a subtag of a language tag names a region: two letters (`US`, `us`) or three digits
/// (`419`).
fn is_region(subtag: &str) -> bool {
    match subtag.len() {
        2 => subtag.bytes().all(|b| b.is_ascii_alphabetic()),
        3 => subtag.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// Whether a format code holds date or time tokens.
pub fn is_temporal_code(code: &str) -> bool {
    let mut in_quote = false;
    for c in code.chars() {
        match c {
            '"' => in_quote = !in_quote,
            'Y' | 'y' | 'D' | 'd' | 'h' | 'H' | 's' | 'W' | 'w' if !in_quote => return true,
            'M' if !in_quote => return true,
            _ => {}
        }
    }
    false
}

/// Formats a value for display: duals and texts show their text, numbers use `format` (or a
/// plain representation when there is none), nulls are empty.
pub fn display(value: &Value, format: Option<&NumberFormat>, locale: &Locale) -> String {
    match value {
        Value::Null => String::new(),
        Value::Text(s) => s.to_string(),
        Value::Dual(n, s) => match format {
            Some(f) if !s.is_empty() && !f.code.is_empty() => format_number(*n, f, locale),
            _ => s.to_string(),
        },
        Value::Number(n) => match format {
            Some(f) if !f.code.is_empty() => format_number(*n, f, locale),
            _ => plain_number(*n, locale),
        },
    }
}

/// A number without a format: integers as integers, others with up to 10 significant decimals.
pub fn plain_number(n: f64, locale: &Locale) -> String {
    if !n.is_finite() {
        return n.to_string();
    }
    let s = if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let s = format!("{n:.10}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if locale.decimal == '.' {
        s
    } else {
        s.replace('.', &locale.decimal.to_string())
    }
}

/// Formats a number with a Qlik format code and a locale.
pub fn format_number(n: f64, format: &NumberFormat, locale: &Locale) -> String {
    let pattern = pattern(format);
    match &*pattern {
        Pattern::Temporal => format_serial(n, &format.code, locale),
        Pattern::Number { positive, negative } => match negative {
            Some(negative) if n < 0.0 => negative.format(-n, locale),
            _ => positive.format(n, locale),
        },
    }
}

/// A number format code, parsed once per thread and code: a report formats every cell of a
/// column with the same code.
#[derive(Debug)]
enum Pattern {
    Temporal,
    Number {
        positive: Box<Section>,
        /// The second section of the code, for negative numbers (shown without their sign).
        negative: Option<Box<Section>>,
    },
}

/// One section of a number code: the digits it asks for and the text around them.
#[derive(Debug)]
struct Section {
    /// A section without digit placeholders is shown as it is, quotes removed.
    literal: Option<String>,
    prefix: String,
    suffix: String,
    percent: bool,
    grouping: bool,
    decimals: usize,
    min_decimals: usize,
    min_int: usize,
}

/// The most codes a thread keeps parsed; past it the cache starts again.
const PATTERN_CACHE: usize = 256;

/// Per code, its patterns by the separators it is written with.
type Parsed = HashMap<String, Vec<(Option<char>, Option<char>, Rc<Pattern>)>>;

fn pattern(format: &NumberFormat) -> Rc<Pattern> {
    thread_local! {
        static PATTERNS: RefCell<Parsed> = RefCell::new(HashMap::new());
    }
    let seps = (format.decimal, format.thousands);
    let found = PATTERNS.with(|p| {
        p.borrow().get(&format.code).and_then(|known| {
            known
                .iter()
                .find(|(d, t, _)| (*d, *t) == seps)
                .map(|(_, _, pattern)| pattern.clone())
        })
    });
    if let Some(pattern) = found {
        return pattern;
    }
    let parsed = Rc::new(parse_pattern(format));
    PATTERNS.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() >= PATTERN_CACHE {
            p.clear();
        }
        p.entry(format.code.clone())
            .or_default()
            .push((seps.0, seps.1, parsed.clone()));
    });
    parsed
}

fn parse_pattern(format: &NumberFormat) -> Pattern {
    if format.is_temporal() {
        return Pattern::Temporal;
    }
    let mut sections = split_sections(&format.code).into_iter();
    let positive = sections.next().unwrap_or_default();
    Pattern::Number {
        positive: Box::new(Section::parse(&positive, format)),
        negative: sections
            .next()
            .map(|code| Box::new(Section::parse(&code, format))),
    }
}

fn split_sections(code: &str) -> Vec<String> {
    let mut sections = vec![String::new()];
    let mut in_quote = false;
    for c in code.chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                sections.last_mut().unwrap().push(c);
            }
            ';' if !in_quote => sections.push(String::new()),
            _ => sections.last_mut().unwrap().push(c),
        }
    }
    sections
}

impl Section {
    fn parse(code: &str, nf: &NumberFormat) -> Section {
        let dec_sep = nf.decimal.unwrap_or('.');
        let thou_sep = nf.thousands.unwrap_or(',');
        let chars: Vec<char> = code.chars().collect();
        let is_digit = |c: char| matches!(c, '0' | '#');
        let Some(first) = chars.iter().position(|&c| is_digit(c)) else {
            return Section {
                literal: Some(code.replace('"', "")),
                prefix: String::new(),
                suffix: String::new(),
                percent: false,
                grouping: false,
                decimals: 0,
                min_decimals: 0,
                min_int: 0,
            };
        };
        let last = chars.iter().rposition(|&c| is_digit(c)).unwrap_or(first);
        let prefix: String = chars[..first].iter().filter(|&&c| c != '"').collect();
        let suffix: String = chars[last + 1..].iter().filter(|&&c| c != '"').collect();
        let body: String = chars[first..=last].iter().collect();
        let (int_part, frac_part) = match body.find(dec_sep) {
            Some(i) => (&body[..i], &body[i + dec_sep.len_utf8()..]),
            None => (body.as_str(), ""),
        };
        Section {
            literal: None,
            percent: prefix.contains('%') || suffix.contains('%'),
            grouping: int_part.contains(thou_sep) && thou_sep != dec_sep,
            decimals: frac_part.chars().filter(|&c| is_digit(c)).count(),
            min_decimals: frac_part.chars().filter(|&c| c == '0').count(),
            min_int: int_part.chars().filter(|&c| c == '0').count(),
            prefix,
            suffix,
        }
    }

    fn format(&self, n: f64, locale: &Locale) -> String {
        if let Some(literal) = &self.literal {
            return literal.clone();
        }
        let decimals = self.decimals;
        let value = if self.percent { n * 100.0 } else { n };
        let scale = 10f64.powi(decimals as i32);
        let negative = value < 0.0 && (value * scale).round() != 0.0;
        // Half away from zero, as Qlik rounds.
        let scaled = (value.abs() * scale).round();
        let mut buf = [0u8; 40];
        let text = if scaled < 2f64.powi(53) && decimals < 16 {
            // Exact in integers: the whole and the decimal digits of the scaled number.
            let scaled = scaled as u64;
            let unit = 10u64.pow(decimals as u32);
            write_digits(&mut buf, scaled / unit, scaled % unit, decimals)
        } else {
            DigitText::Heap(format!("{:.decimals$}", scaled / scale))
        };
        let text = text.as_str();
        let (int_digits, frac_digits) = text.split_once('.').unwrap_or((text, ""));
        let mut frac_digits = frac_digits;
        while frac_digits.len() > self.min_decimals && frac_digits.ends_with('0') {
            frac_digits = &frac_digits[..frac_digits.len() - 1];
        }
        let int_digits = if int_digits == "0" && self.min_int == 0 {
            ""
        } else {
            int_digits
        };
        let padding = self.min_int.saturating_sub(int_digits.len());

        let mut out = String::with_capacity(
            self.prefix.len()
                + padding
                + int_digits.len() * 4 / 3
                + decimals
                + self.suffix.len()
                + 4,
        );
        if negative {
            out.push('-');
        }
        out.push_str(&self.prefix);
        let digits = std::iter::repeat_n('0', padding).chain(int_digits.chars());
        let count = padding + int_digits.len();
        for (i, digit) in digits.enumerate() {
            if self.grouping && i > 0 && (count - i).is_multiple_of(3) {
                out.push(locale.thousands);
            }
            out.push(digit);
        }
        if !frac_digits.is_empty() {
            out.push(locale.decimal);
            out.push_str(frac_digits);
        }
        out.push_str(&self.suffix);
        out
    }
}

/// `whole` and `frac` as `whole.frac`, `frac` zero-padded to `decimals` digits (no point when
/// there are none).
fn write_digits(buf: &mut [u8; 40], whole: u64, frac: u64, decimals: usize) -> DigitText<'_> {
    /// Writes `n` with at least `min` digits so that it ends before `end`; returns its start.
    fn put(buf: &mut [u8; 40], end: usize, mut n: u64, min: usize) -> usize {
        let mut at = end;
        while n > 0 || end - at < min.max(1) {
            at -= 1;
            buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        at
    }
    let mut at = buf.len();
    if decimals > 0 {
        at = put(buf, at, frac, decimals) - 1;
        buf[at] = b'.';
    }
    at = put(buf, at, whole, 1);
    DigitText::Stack(&buf[at..])
}

/// Digits written on the stack, or by the general formatter for numbers too large for that.
enum DigitText<'a> {
    Stack(&'a [u8]),
    Heap(String),
}

impl DigitText<'_> {
    fn as_str(&self) -> &str {
        match self {
            // Only ASCII digits and a point are written.
            DigitText::Stack(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
            DigitText::Heap(text) => text,
        }
    }
}

/// A calendar date and time of day broken out of a serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTimeParts {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millisecond: u32,
    /// 0 = Monday.
    pub weekday: u32,
}

/// The serial (days since 1899-12-30) of a calendar date.
pub fn date_to_serial(year: i64, month: u32, day: u32) -> f64 {
    (days_from_civil(year, month, day) - SERIAL_EPOCH_DAYS) as f64
}

/// Breaks a serial into its calendar parts.
pub fn serial_to_parts(serial: f64) -> DateTimeParts {
    let days = serial.floor();
    let mut millis = ((serial - days) * 86_400_000.0).round() as i64;
    let mut day_number = days as i64;
    if millis >= 86_400_000 {
        millis -= 86_400_000;
        day_number += 1;
    }
    let (year, month, day) = civil_from_days(day_number + SERIAL_EPOCH_DAYS);
    let weekday = (day_number + 5).rem_euclid(7) as u32; // 1899-12-30 was a Saturday
    DateTimeParts {
        year,
        month,
        day,
        hour: (millis / 3_600_000) as u32,
        minute: (millis / 60_000 % 60) as u32,
        second: (millis / 1000 % 60) as u32,
        millisecond: (millis % 1000) as u32,
        weekday,
    }
}

/// Parses `YYYY-MM-DD`, with an optional ` hh:mm[:ss]` or `Thh:mm[:ss]` time, into a serial.
pub fn parse_iso_datetime(s: &str) -> Option<(f64, bool)> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i64 = s.get(0..4)?.parse().ok()?;
    let month: u32 = s.get(5..7)?.parse().ok()?;
    let day: u32 = s.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let date = date_to_serial(year, month, day);
    if b.len() == 10 {
        return Some((date, false));
    }
    if b[10] != b' ' && b[10] != b'T' {
        return None;
    }
    let time = s.get(11..)?.trim_end_matches('Z');
    let mut parts = time.split(':');
    let hour: u32 = parts.next()?.parse().ok()?;
    let minute: u32 = parts.next()?.parse().ok()?;
    let second: f64 = parts.next().map_or(Some(0.0), |p| p.parse().ok())?;
    if parts.next().is_some() || hour > 23 || minute > 59 || !(0.0..60.0).contains(&second) {
        return None;
    }
    let fraction = (hour as f64 * 3600.0 + minute as f64 * 60.0 + second) / 86_400.0;
    Some((date + fraction, true))
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

// Howard Hinnant's civil calendar algorithms, days counted from 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats a day serial with a date/time code.
pub fn format_serial(serial: f64, code: &str, locale: &Locale) -> String {
    let p = serial_to_parts(serial);
    let twelve_hour = code.contains("tt") || code.contains("TT");
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len() + 8);
    let mut i = 0;
    let mut after_hour = false;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        match c {
            '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '"')
                    .map_or(chars.len(), |e| i + 1 + e);
                out.extend(&chars[i + 1..end]);
                i = end + 1;
                continue;
            }
            'Y' | 'y' => {
                if run >= 4 {
                    out.push_str(&format!("{:04}", p.year));
                } else {
                    out.push_str(&format!("{:02}", p.year.rem_euclid(100)));
                }
            }
            'M' => {
                match run {
                    1 => out.push_str(&p.month.to_string()),
                    2 => out.push_str(&format!("{:02}", p.month)),
                    3 => out.extend(locale.month_names[p.month as usize - 1].chars().take(3)),
                    _ => out.push_str(locale.month_names[p.month as usize - 1]),
                }
                after_hour = false;
            }
            'D' | 'd' => {
                if run == 1 {
                    out.push_str(&p.day.to_string());
                } else {
                    out.push_str(&format!("{:02}", p.day));
                }
            }
            'W' | 'w' => {
                let name = locale.day_names[p.weekday as usize];
                if run >= 4 {
                    out.push_str(name);
                } else {
                    out.extend(name.chars().take(3));
                }
            }
            'h' | 'H' => {
                let hour = if twelve_hour {
                    (p.hour + 11) % 12 + 1
                } else {
                    p.hour
                };
                if run == 1 {
                    out.push_str(&hour.to_string());
                } else {
                    out.push_str(&format!("{hour:02}"));
                }
                after_hour = true;
            }
            'm' => {
                // Lower-case m is minutes; Qlik writes months in upper case.
                if run == 1 {
                    out.push_str(&p.minute.to_string());
                } else {
                    out.push_str(&format!("{:02}", p.minute));
                }
                let _ = after_hour;
            }
            's' | 'S' => out.push_str(&format!("{:02}", p.second)),
            'f' | 'F' => {
                let digits = format!("{:03}", p.millisecond);
                out.push_str(&digits[..run.min(3)]);
            }
            't' | 'T' => {
                out.push_str(if p.hour < 12 { "AM" } else { "PM" });
            }
            _ => {
                out.extend(std::iter::repeat_n(c, run));
            }
        }
        i += run;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Locale {
        Locale::new("en-US")
    }

    #[test]
    fn serial_epoch_matches_qlik_and_excel() {
        assert_eq!(date_to_serial(1899, 12, 30), 0.0);
        assert_eq!(date_to_serial(1900, 3, 1), 61.0);
        assert_eq!(date_to_serial(2016, 11, 8), 42682.0);
        assert_eq!(date_to_serial(1756, 1, 1), -52593.0);
        let p = serial_to_parts(42682.75);
        assert_eq!(
            (p.year, p.month, p.day, p.hour, p.minute),
            (2016, 11, 8, 18, 0)
        );
        assert_eq!(p.weekday, 1); // a Tuesday
    }

    #[test]
    fn iso_dates_parse() {
        assert_eq!(parse_iso_datetime("2016-11-08"), Some((42682.0, false)));
        assert_eq!(
            parse_iso_datetime("2016-11-08 12:00"),
            Some((42682.5, true))
        );
        assert_eq!(parse_iso_datetime("2016-02-30"), None);
        assert_eq!(parse_iso_datetime("20161108"), None);
    }

    #[test]
    fn number_codes() {
        let f = |code: &str, n: f64| format_number(n, &NumberFormat::new(code), &us());
        assert_eq!(f("#,##0.00", 1234567.891), "1,234,567.89");
        assert_eq!(f("#,##0.00", -0.001), "0.00");
        assert_eq!(f("#,##0", -1234.5), "-1,235");
        assert_eq!(f("0.0%", 0.1234), "12.3%");
        assert_eq!(f("$#,##0.00;($#,##0.00)", -12.5), "($12.50)");
        assert_eq!(f("0.##", 2.5), "2.5");
        assert_eq!(f("000", 7.0), "007");
        assert_eq!(f("#,000", 7.0), "007");
        assert_eq!(f("#,##0", 1234567.0), "1,234,567");
        assert_eq!(f("0", 0.4), "0");
        assert_eq!(f("#.##", 0.4), ".4");
        assert_eq!(f("\"n/a\"", 3.0), "n/a");
        assert_eq!(f("0;\"minus\"", -3.0), "minus");
        assert_eq!(f("0.00 \"kg\"", 1.006), "1.01 kg");
    }

    #[test]
    fn integer_digits_match_the_general_formatter() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let decimals = (seed % 7) as usize;
            let magnitude = 10f64.powi((seed >> 8) as i32 % 10);
            let value = (seed >> 16) as f64 / (1u64 << 48) as f64 * magnitude;
            let scale = 10f64.powi(decimals as i32);
            let scaled = (value * scale).round();
            let unit = 10u64.pow(decimals as u32);
            let mut buf = [0u8; 40];
            let ours = write_digits(
                &mut buf,
                scaled as u64 / unit,
                scaled as u64 % unit,
                decimals,
            )
            .as_str()
            .to_string();
            assert_eq!(
                ours,
                format!("{:.decimals$}", scaled / scale),
                "{value} {decimals}"
            );
        }
    }

    #[test]
    fn one_code_with_other_separators_is_parsed_apart() {
        let dotted = NumberFormat::new("#.##0");
        let comma_decimal = NumberFormat {
            code: "#.##0".into(),
            decimal: Some(','),
            thousands: Some('.'),
        };
        for _ in 0..2 {
            assert_eq!(format_number(1234.5, &dotted, &us()), "1234.5");
            assert_eq!(format_number(1234.5, &comma_decimal, &us()), "1,235");
        }
    }

    #[test]
    fn language_tags_parse_and_other_text_is_refused() {
        for tag in [
            "en-US",
            "de_CH",
            "sr-Latn-RS",
            "ja",
            "gsw-CH",
            "zh-Hant-TW-u-nu-hanidec",
        ] {
            assert!(Locale::parse(tag).is_ok(), "{tag}");
        }
        assert_eq!(Locale::parse("de-DE").unwrap().decimal, ',');
        for text in [
            "",
            "Germany",
            "de DE",
            "d",
            "de-",
            "-DE",
            "en-US!",
            "deutsch-DE",
        ] {
            let err = Locale::parse(text).unwrap_err();
            assert!(err.to_string().contains("is not a locale"), "{text}: {err}");
        }
    }

    #[test]
    fn locale_separators() {
        let de = Locale::new("de-DE");
        let n = format_number(1234.5, &NumberFormat::new("#,##0.00"), &de);
        assert_eq!(n, "1.234,50");
        let code = NumberFormat {
            code: "# ##0,00".into(),
            decimal: Some(','),
            thousands: Some(' '),
        };
        assert_eq!(format_number(1234.5, &code, &us()), "1,234.50");
        let grouped = NumberFormat::new("#,##0.00");
        let day = date_to_serial(2016, 11, 8);
        for (tag, number, date) in [
            ("el-GR", "1.234,50", "08/11/2016"),
            ("de-CH", "1\u{2019}234.50", "08.11.2016"),
            ("tr-TR", "1.234,50", "08.11.2016"),
            ("hu-HU", "1\u{a0}234,50", "2016.11.08"),
            ("ja-JP", "1,234.50", "2016/11/08"),
            ("xx-YY", "1,234.50", "2016-11-08"),
        ] {
            let locale = Locale::new(tag);
            assert_eq!(format_number(1234.5, &grouped, &locale), number, "{tag}");
            assert_eq!(format_serial(day, locale.date_code, &locale), date, "{tag}");
        }
    }

    #[test]
    fn date_codes() {
        let s = date_to_serial(2016, 11, 8) + 0.5 + 5.0 / 1440.0;
        assert_eq!(format_serial(s, "YYYY-MM-DD", &us()), "2016-11-08");
        assert_eq!(
            format_serial(s, "DD.MM.YYYY hh:mm", &us()),
            "08.11.2016 12:05"
        );
        assert_eq!(format_serial(s, "D MMM YY", &us()), "8 Nov 16");
        assert_eq!(
            format_serial(s, "WWWW, D. MMMM", &Locale::new("de-DE")),
            "Dienstag, 8. November"
        );
        assert_eq!(format_serial(s, "h:mm TT", &us()), "12:05 PM");
    }

    #[test]
    fn region_subtags_match_whatever_their_case() {
        let day = date_to_serial(2016, 11, 8);
        for tag in ["en-US", "en-us", "en_us", "EN-Us", "en-Latn-US"] {
            assert_eq!(Locale::new(tag).date_code, "M/D/YYYY", "{tag}");
            let shown = format_serial(day, Locale::new(tag).date_code, &Locale::new(tag));
            assert_eq!(shown, "11/8/2016", "{tag}");
        }
        for tag in ["en-GB", "en-gb", "en", "en-AU"] {
            assert_eq!(Locale::new(tag).date_code, "DD/MM/YYYY", "{tag}");
        }
    }

    #[test]
    fn month_and_day_names_in_more_languages() {
        let s = date_to_serial(2016, 3, 8);
        let named = |tag: &str| format_serial(s, "WWWW D MMMM", &Locale::new(tag));
        assert_eq!(named("pt-BR"), "terça-feira 8 março");
        assert_eq!(named("es-ES"), "martes 8 marzo");
        assert_eq!(named("it-IT"), "martedì 8 marzo");
        assert_eq!(named("nl-NL"), "dinsdag 8 maart");
        assert_eq!(named("pl-PL"), "wtorek 8 marzec");
        assert_eq!(
            format_serial(s, "WWW D MMM", &Locale::new("pt")),
            "ter 8 mar"
        );
        assert_eq!(named("pl-pl"), named("pl-PL"));
        let october = date_to_serial(2016, 10, 8);
        let pl = format_serial(october, "MMMM", &Locale::new("pl"));
        assert_eq!(pl, "październik");
    }
}
