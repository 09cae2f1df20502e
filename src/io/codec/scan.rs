//! The fast path of [`decode`](super::decode): a flat JSON object whose values are plain strings
//! (no escapes), numbers, booleans or nulls — what producers send — read in one pass.
//!
//! It fills the same [`Wire`] that serde would, or gives up (`None`) on anything else: escapes,
//! nested values, duplicate fields, integers beyond 64 bits, `-0`, syntax errors. The caller
//! then runs serde, which decides and words the error, so the fast path never changes what a
//! message decodes to (a property test checks it against serde). Floats are correctly rounded
//! like serde_json's `float_roundtrip`: exactly from the digits already read when Clinger's fast
//! path allows it ([`exact_float`]), otherwise by the standard library's parser.

use std::borrow::Cow;

use super::{Field, Wire};

/// Reads `bytes` as a flat JSON object, or `None` to hand it to serde.
///
/// The message is checked to be UTF-8 once, up front (serde would refuse a string that is not,
/// and JSON outside strings is ASCII), so names, strings and numbers are then sliced as text
/// without checking each again (issue 10: those checks were 14 % of a bar's decode).
pub(super) fn scan(bytes: &[u8]) -> Option<Wire<'_>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut c = Cursor {
        s: text,
        b: bytes,
        i: 0,
    };
    let mut w = Wire::default();
    let mut seen = 0u16;
    c.expect(b'{')?;
    if c.peek() == Some(b'}') {
        c.i += 1;
    } else {
        loop {
            c.expect(b'"')?;
            let name = c.string()?;
            c.expect(b':')?;
            let value = c.value()?;
            if let Some((slot, bit)) = w.slot(name.as_bytes()) {
                if seen & bit != 0 {
                    return None; // serde refuses a duplicate field
                }
                seen |= bit;
                *slot = value;
            }
            match c.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    }
    c.skip_whitespace();
    (c.i == bytes.len()).then_some(w)
}

impl<'a> Wire<'a> {
    /// The field named `name` and its bit in the duplicate mask; `None` for a field serde
    /// would ignore.
    fn slot(&mut self, name: &[u8]) -> Option<(&mut Field<'a>, u16)> {
        let (slot, n) = match name {
            b"key" => (&mut self.key, 0),
            b"ts" => (&mut self.ts, 1),
            b"open" => (&mut self.open, 2),
            b"high" => (&mut self.high, 3),
            b"low" => (&mut self.low, 4),
            b"close" => (&mut self.close, 5),
            b"volume" => (&mut self.volume, 6),
            b"value" => (&mut self.value, 7),
            b"nominal" => (&mut self.nominal, 8),
            b"lsl" => (&mut self.lsl, 9),
            b"usl" => (&mut self.usl, 10),
            b"tool" => (&mut self.tool, 11),
            _ => return None,
        };
        Some((slot, 1 << n))
    }
}

/// A position in the message, which is known to be UTF-8: `b` is `s`'s bytes, held beside it
/// rather than derived at each use (deriving them cost 3 % more instructions per decode).
struct Cursor<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.b.get(self.i).copied()
    }

    /// The next byte that is not whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string whose opening quote was consumed; `None` on an escape or a control character.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.i;
        let len = self.b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if self.b[start + len] != b'"' {
            return None;
        }
        self.i += len + 1;
        // Both ends are ASCII (after a quote, at a quote): character boundaries.
        self.s.get(start..start + len)
    }

    fn value(&mut self) -> Option<Field<'a>> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                Some(Field::Str(Cow::Borrowed(self.string()?)))
            }
            b'n' => self.literal(b"null", Field::Null),
            b't' => self.literal(b"true", Field::Bool),
            b'f' => self.literal(b"false", Field::Bool),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], field: Field<'a>) -> Option<Field<'a>> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| {
            self.i = end;
            field
        })
    }

    /// Digits from the cursor on: how many, and their value as an integer — exact for up to 19
    /// digits (10^19 - 1 < 2^64), wrapped beyond (the caller checks the count). Folding while
    /// scanning spares a second pass over the digits.
    fn digits(&mut self) -> (usize, u64) {
        let from = self.i;
        let mut value = 0u64;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            value = value.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            self.i += 1;
        }
        (self.i - from, value)
    }

    /// A number in JSON's grammar: an integer (`Int` when negative, `Uint` otherwise, as serde
    /// sees it) or, with a fraction or an exponent, a finite `Float`.
    fn number(&mut self) -> Option<Field<'a>> {
        let start = self.i;
        let negative = self.b[start] == b'-';
        if negative {
            self.i += 1;
        }
        let whole_start = self.i;
        let (whole, whole_value) = self.digits();
        if whole == 0 || (whole > 1 && self.b[whole_start] == b'0') {
            return None; // no digits, or a leading zero
        }
        let mut float = false;
        let (mut fraction, mut fraction_value) = (0, 0);
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            (fraction, fraction_value) = self.digits();
            if fraction == 0 {
                return None;
            }
            float = true;
        }
        // The written exponent, when it is short enough to matter to the exact path.
        let mut exponent = Some(0i32);
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            let minus = self.b.get(self.i) == Some(&b'-');
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            let (n, e) = self.digits();
            if n == 0 {
                return None;
            }
            // At most 4 digits: e < 10^4 fits an i32.
            exponent = (n <= 4).then_some(if minus { -(e as i32) } else { e as i32 });
            float = true;
        }
        if float {
            let digits = Digits {
                count: whole + fraction,
                whole: whole_value,
                fraction: fraction_value,
                fraction_count: fraction,
            };
            let v = match exponent.and_then(|e| exact_float(&digits, e)) {
                Some(v) if negative => -v,
                Some(v) => v,
                None => self.s.get(start..self.i)?.parse().ok()?,
            };
            return v.is_finite().then_some(Field::Float(v));
        }
        let magnitude = if whole <= 19 {
            whole_value
        } else {
            // Twenty digits may still fit a u64 (up to 18446744073709551615): fold checked.
            self.b[whole_start..self.i]
                .iter()
                .try_fold(0u64, |acc, &d| {
                    acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })?
        };
        if !negative {
            Some(Field::Uint(magnitude))
        } else if magnitude == 0 {
            None // serde turns `-0` into the float -0.0; leave that to it
        } else {
            // Down to i64::MIN; beyond, serde makes a float.
            0i64.checked_sub_unsigned(magnitude).map(Field::Int)
        }
    }
}

/// The digits of a decimal number as [`Cursor::digits`] folded them.
struct Digits {
    /// Digits before and after the point.
    count: usize,
    /// The value of the digits before the point (exact when `count <= 19`).
    whole: u64,
    /// The value of the digits after the point, and how many there are.
    fraction: u64,
    fraction_count: usize,
}

/// Powers of ten that an f64 holds exactly (5^22 < 2^53).
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The magnitude `whole.fraction × 10^exponent` when Clinger's fast path gives it exactly
/// rounded (W. D. Clinger, "How to Read Floating Point Numbers Accurately", PLDI 1990): the
/// digits as an integer `m <= 2^53` and a power of ten `10^k` with `|k| <= 22` are both exact
/// in an f64, so one IEEE multiplication or division rounds `m × 10^k` correctly — the bits
/// any correct parser gives, the standard library's included (it takes the same path first).
/// `None` for anything else (more than 16 digits, a larger mantissa or power), which the
/// caller hands to the standard library's parser. Prices as producers write them (up to ~15
/// significant digits) take this path without a second pass over their digits.
fn exact_float(d: &Digits, exponent: i32) -> Option<f64> {
    // 10^16 > 2^53: seventeen digits or more (a computed double's shortest form often has
    // them) go straight to the standard library, at the cost of this one comparison.
    if d.count > 16 {
        return None;
    }
    // Both parts are exact (at most 16 digits), and so is their sum.
    let m = d.whole * 10u64.pow(d.fraction_count as u32) + d.fraction;
    if m > 1 << 53 {
        return None;
    }
    let k = exponent - d.fraction_count as i32;
    let power = EXACT_POWERS_OF_TEN.get(k.unsigned_abs() as usize)?;
    // m <= 2^53 converts exactly (through i64: one instruction on x86-64, u64 takes five).
    let m = m as i64 as f64;
    Some(if k < 0 { m / power } else { m * power })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::wire_by_serde;
    use super::*;

    /// serde's reading of `text`, when it is a record object at all.
    fn by_serde(text: &str) -> Option<String> {
        wire_by_serde(text.as_bytes())
            .ok()
            .map(|w| format!("{w:?}"))
    }

    #[test]
    fn what_producers_send_takes_the_fast_path() {
        for text in [
            r#"{"key":"AAPL","ts":1700000000000000000,"open":1.5,"high":2,"low":0.25,"close":1e-3,"volume":1000}"#,
            "{ \"key\" : \"é\",\n\t\"ts\": \"2024-01-02T05:04:05.5+02:00\", \"value\": -3.25e+2, \"tool\": null, \"source\": true }\r\n",
            "{}",
        ] {
            let fast = scan(text.as_bytes()).unwrap_or_else(|| panic!("fast path refused {text}"));
            assert_eq!(Some(format!("{fast:?}")), by_serde(text), "{text}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_serde() {
        for text in [
            r#"{"k\u0065y":"A"}"#,
            r#"{"key":"A\n"}"#,
            r#"{"key":"A","key":"B"}"#,
            r#"{"ts":-0}"#,
            r#"{"ts":18446744073709551616}"#,
            r#"{"x":[1]}"#,
            r#"{"x":{}}"#,
            r#"{"x":01}"#,
            r#"{"x":1.}"#,
            r#"{"x":1e}"#,
            r#"{"x":1e999}"#,
            r#"{"x":1,}"#,
            r#"{"x":1} x"#,
            "\u{c}{}",
            "[1]",
            "",
        ] {
            assert!(scan(text.as_bytes()).is_none(), "{text}");
        }
    }

    /// The longest integers a u64 holds take the checked path, shorter ones the unchecked one;
    /// both read as serde reads them.
    #[test]
    fn integers_at_the_edges_read_as_serde_reads_them() {
        for text in [
            r#"{"ts":9999999999999999999}"#,
            r#"{"ts":18446744073709551615}"#,
            r#"{"ts":-9223372036854775808}"#,
            r#"{"ts":1700000000000000000}"#,
        ] {
            let fast = scan(text.as_bytes()).unwrap_or_else(|| panic!("fast path refused {text}"));
            assert_eq!(Some(format!("{fast:?}")), by_serde(text), "{text}");
        }
    }

    /// A message that is not UTF-8 anywhere — even in a field nobody reads — is serde's to
    /// refuse or read.
    #[test]
    fn bytes_that_are_not_utf8_are_left_to_serde() {
        assert!(scan(b"{\"key\":\"A\",\"note\":\"\xff\"}").is_none());
        assert!(scan(b"{\"k\xc3\":1}").is_none());
        assert!(scan("{\"key\":\"\u{e9}\"}".as_bytes()).is_some());
    }

    /// JSON-ish text built from pieces that are often valid, sometimes not.
    fn object() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("key"),
            Just("ts"),
            Just("open"),
            Just("high"),
            Just("low"),
            Just("close"),
            Just("volume"),
            Just("value"),
            Just("nominal"),
            Just("lsl"),
            Just("usl"),
            Just("tool"),
            Just("part"),
            Just("k\\u0065y"),
            Just("é"),
        ];
        let value = prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            any::<u64>().prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| format!("{v}")),
            any::<f64>().prop_map(|v| format!("{v:e}")),
            any::<f64>().prop_map(|v| format!("{v:E}")),
            "-?[0-9]{1,3}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{0,4})?",
            "\"[a-zA-Z0-9 é:.+-]{0,12}\"",
            Just("\"a\\\"b\"".to_string()),
            Just("null".to_string()),
            Just("true".to_string()),
            Just("fals".to_string()),
            Just("[1, 2]".to_string()),
            Just("{\"a\": 1}".to_string()),
        ];
        let space = "[ \t\r\n\u{c}]{0,2}";
        let member = (space, name, space, space, value, space)
            .prop_map(|(a, n, b, c, v, d)| format!("{a}\"{n}\"{b}:{c}{v}{d}"));
        (prop::collection::vec(member, 0..8), space, 0usize..200).prop_map(
            |(members, tail, cut)| {
                let mut text = format!("{{{}}}{tail}", members.join(","));
                // Now and then a message cut short (still on a character boundary).
                if cut < text.len() && cut % 7 == 0 {
                    let at = (0..=cut)
                        .rev()
                        .find(|&i| text.is_char_boundary(i))
                        .unwrap_or(0);
                    text.truncate(at);
                }
                text
            },
        )
    }

    /// The float a one-member message scans to.
    fn scanned_float(number: &str) -> Option<f64> {
        let text = format!("{{\"close\":{number}}}");
        match scan(text.as_bytes())?.close {
            Field::Float(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn exact_floats_at_the_edges_of_the_fast_path() {
        for text in [
            "9007199254740992.0", // 2^53: exact path
            "9007199254740993.0", // 2^53 + 1: the standard parser (rounds to even)
            "1.0e22",
            "1.0e23",
            "1e-22",
            "123456789012345678.9",
            "0.1",
            "-0.0",
            "2.2250738585072014e-308",
            "1.7976931348623157e308",
            "4.9e-324",
            "0.30000000000000004",
            "1e0005",
        ] {
            let want: f64 = text.parse().unwrap();
            let got = scanned_float(text).unwrap_or_else(|| panic!("{text} not scanned"));
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20000))]
        /// Prices as producers write them (shortest round trip, fixed decimals, exponents) scan
        /// to the standard library's float, to the bit, on both sides of the fast path's bounds.
        #[test]
        fn floats_scan_to_the_standard_parsers_bits(
            v in prop_oneof![1e-6..1e7f64, 0.0..1.0f64, any::<f64>()],
            decimals in 0usize..18,
            digits in "-?(0|[1-9][0-9]{0,11})\\.[0-9]{1,12}([eE][+-]?[0-9]{1,3})?",
        ) {
            let v = v.abs();
            for text in [format!("{v:?}"), format!("{v:.decimals$}"), format!("{v:e}"), digits] {
                let want: f64 = text.parse().unwrap();
                if want.is_finite() && text.contains(['.', 'e']) {
                    let got = scanned_float(&text);
                    prop_assert_eq!(got.map(f64::to_bits), Some(want.to_bits()), "{}", text);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// Whatever the fast path accepts, serde reads the same way, to the bit.
        #[test]
        fn the_fast_path_agrees_with_serde(text in object()) {
            if let Some(fast) = scan(text.as_bytes()) {
                prop_assert_eq!(Some(format!("{fast:?}")), by_serde(&text));
            }
        }
    }
}
