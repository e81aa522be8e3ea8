//! Positive and negative cases of each personal-data detector. Valid numbers come from their
//! issuers' published test data: card numbers from the card networks' test-card lists (as
//! published by Stripe's and PayPal's testing docs), IBANs from SWIFT's IBAN Registry examples,
//! SSN rules from the SSA's "Social Security Number Randomization" notice, addresses from
//! RFC 5737 / RFC 3849 (documentation ranges).

use super::*;

fn run(f: fn(&PiiPatterns, &str, &mut Vec<Span>), text: &str) -> Vec<String> {
    let p = PiiPatterns::new().unwrap();
    let mut spans = Vec::new();
    f(&p, text, &mut spans);
    spans.iter().map(|&(s, e)| text[s..e].to_string()).collect()
}

#[test]
fn emails_including_inside_code_blocks() {
    assert_eq!(
        run(
            PiiPatterns::emails,
            "write to jane.doe+ai@example.co.uk today"
        ),
        ["jane.doe+ai@example.co.uk"]
    );
    // Markdown code does not hide an address.
    assert_eq!(
        run(
            PiiPatterns::emails,
            "```python\nsend(\"ops@corp.example.com\")\n```"
        ),
        ["ops@corp.example.com"]
    );
    for text in ["user@localhost", "@example.com", "a @ b.com", "x@y.c"] {
        assert!(run(PiiPatterns::emails, text).is_empty(), "{text}");
    }
}

#[test]
fn phone_numbers_international_and_national() {
    for phone in [
        "+1 415 555 2671",
        "+44 20 7946 0958",
        "+33 6 12 34 56 78",
        "+4915112345678",
        "(415) 555-2671",
        "415-555-2671",
        "020 7946 0958",
        "06 12 34 56 78",
    ] {
        assert_eq!(
            run(PiiPatterns::phones, &format!("call {phone} now")),
            [phone],
            "{phone}"
        );
    }
    for text in [
        "on 2024-01-15 at 10:30",
        "version 1.2.3",
        "order 12345",
        "+12",
        "01-02-2024",
        "pi is 3.14159265",
    ] {
        assert!(
            run(PiiPatterns::phones, text).is_empty(),
            "{text}: {:?}",
            run(PiiPatterns::phones, text)
        );
    }
}

#[test]
fn card_numbers_must_pass_luhn() {
    // Visa, Mastercard, Amex, Discover test numbers.
    for card in [
        "4242424242424242",
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",
        "378282246310005",
        "6011111111111117",
    ] {
        assert_eq!(run(PiiPatterns::cards, &format!("card: {card}.")), [card]);
    }
    for text in [
        "4242424242424241",        // one digit off: fails Luhn
        "4111 1111 1111 1112",     // fails Luhn
        "0000 0000 0000 0000",     // passes Luhn, but no card is all zeros
        "123456789012",            // too short
        "order A4242424242424242", // inside a word
    ] {
        assert!(run(PiiPatterns::cards, text).is_empty(), "{text}");
    }
    assert!(
        luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]),
        "Luhn's textbook example 79927398713"
    );
}

#[test]
fn ibans_must_pass_mod_97_and_their_country_length() {
    for iban in [
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "DE89 3704 0044 0532 0130 00",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
    ] {
        assert_eq!(
            run(PiiPatterns::ibans, &format!("IBAN {iban} please")),
            [iban]
        );
    }
    // A trailing capitalised word is not part of it.
    assert_eq!(
        run(PiiPatterns::ibans, "DE89 3704 0044 0532 0130 00 AND MORE"),
        ["DE89 3704 0044 0532 0130 00"]
    );
    for text in [
        "GB83 WEST 1234 5698 7654 32", // bad check digits
        "DE89 3704 0044 0532 0130 0",  // wrong length for DE
        "ZZ89 3704 0044 0532 0130 00", // no such country
    ] {
        assert!(run(PiiPatterns::ibans, text).is_empty(), "{text}");
    }
}

#[test]
fn ssns_follow_the_ssa_rules() {
    assert_eq!(run(PiiPatterns::ssns, "SSN 123-45-6789."), ["123-45-6789"]);
    assert_eq!(run(PiiPatterns::ssns, "SSN 536 22 1234"), ["536 22 1234"]);
    for text in [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "123-00-4567",
        "123-45-0000",
        "078-05-1120",
        "123-45 6789",
        "1123-45-6789",
    ] {
        assert!(run(PiiPatterns::ssns, text).is_empty(), "{text}");
    }
}

#[test]
fn ip_addresses_v4_and_v6() {
    assert_eq!(
        run(PiiPatterns::ips, "from 192.0.2.15 today"),
        ["192.0.2.15"]
    );
    assert_eq!(
        run(PiiPatterns::ips, "host 2001:db8::8a2e:370:7334 is up"),
        ["2001:db8::8a2e:370:7334"]
    );
    assert_eq!(run(PiiPatterns::ips, "[::1]:8080"), ["::1"]);
    for text in [
        "version 1.2.3.4.5",
        "999.1.1.1",
        "at 12:30:45",
        "std::net",
        "Vec::new()",
    ] {
        assert!(
            run(PiiPatterns::ips, text).is_empty(),
            "{text}: {:?}",
            run(PiiPatterns::ips, text)
        );
    }
}

mod prefilters {
    use super::*;
    use proptest::prelude::*;

    /// What the detector found when its pattern walked the whole text (no prefilter).
    fn whole_text(pattern: &str, text: &str) -> Vec<(usize, usize)> {
        let re = Regex::new(pattern).unwrap();
        re.find_iter(text).map(|m| (m.start(), m.end())).collect()
    }

    /// What the stretches gave, with no digit floor (so every match is kept).
    fn by_stretches(pattern: &str, text: &str) -> Vec<(usize, usize)> {
        let re = Regex::new(pattern).unwrap();
        let mut out = Vec::new();
        for_number_stretches(text, 0, &re, |m| out.push((m.start, m.end)));
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Running a number pattern over the stretches finds exactly what it finds over the
        /// whole text, on texts mixing digits, separators, letters and non-ASCII characters.
        #[test]
        fn stretches_find_what_the_whole_text_holds(
            tokens in proptest::collection::vec(proptest::sample::select(vec![
                "4242", "123", "45", "6789", "0", "2", "255", " ", "-", ".", "(", ")", "+", "/",
                "a", "Z", "_", "é", "€",
            ]), 0..40)
        ) {
            let text = tokens.concat();
            for pattern in [PHONE, CARD, SSN, IPV4] {
                prop_assert_eq!(by_stretches(pattern, &text), whole_text(pattern, &text), "{}", pattern);
            }
        }
    }

    #[test]
    fn ibans_and_emails_are_still_found_after_their_prefilters() {
        assert_eq!(
            run(PiiPatterns::ibans, "pay to GB82 WEST 1234 5698 7654 32 now"),
            ["GB82 WEST 1234 5698 7654 32"]
        );
        assert!(run(PiiPatterns::ibans, "no account number here").is_empty());
        assert!(run(PiiPatterns::emails, "no address here").is_empty());
    }
}
