//! Unit and property tests of the exposition parser. The authority on what Prometheus does is
//! the `exposition_parity` integration test; these pin the rules down case by case.

use super::lex::{parse_float, seconds_to_ms, NORMAL_NAN_BITS};
use super::*;

fn text(s: &str) -> Vec<ParsedSample> {
    match parse(s.as_bytes(), Format::Text) {
        Ok(v) => v,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn om(s: &str) -> Vec<ParsedSample> {
    match parse(s.as_bytes(), Format::OpenMetrics) {
        Ok(v) => v,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn err(s: &[u8], format: Format) -> ParseError {
    match parse(s, format) {
        Ok(v) => panic!(
            "expected an error for {:?}, got {v:?}",
            String::from_utf8_lossy(s)
        ),
        Err(e) => e,
    }
}

fn err_line(s: &str, format: Format) -> usize {
    err(s.as_bytes(), format).line
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn counter_with_help_and_type() {
    let s = text(
        "# HELP http_requests_total The total.\n# TYPE http_requests_total counter\n\
         http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
         http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n",
    );
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].name, "http_requests_total");
    assert_eq!(s[0].labels, labels(&[("method", "post"), ("code", "200")]));
    assert_eq!(s[0].value, 1027.0);
    assert_eq!(s[0].timestamp_ms, Some(1395066363000));
    assert_eq!(s[1].value, 3.0);
}

#[test]
fn gauge_without_labels_or_timestamp() {
    let s = text("# TYPE queue_depth gauge\nqueue_depth 4.5\n");
    assert_eq!(s[0].labels, vec![]);
    assert_eq!(s[0].value, 4.5);
    assert_eq!(s[0].timestamp_ms, None);
}

#[test]
fn untyped_and_comments() {
    let s = text("# just a comment\n#no space comment\n\nmetric_without_type 12.47\n");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].name, "metric_without_type");
}

#[test]
fn special_values_as_go_spells_them() {
    let s = text("a NaN\nb +Inf\nc -Inf\nd 1e-3\ne -0.5\nf Inf\ng nan\nh +infinity\ni INF\n");
    assert_eq!(s[0].value.to_bits(), NORMAL_NAN_BITS);
    assert_eq!(s[1].value, f64::INFINITY);
    assert_eq!(s[2].value, f64::NEG_INFINITY);
    assert_eq!(s[3].value, 0.001);
    assert_eq!(s[4].value, -0.5);
    assert_eq!(s[5].value, f64::INFINITY);
    assert!(s[6].value.is_nan());
    assert_eq!(s[7].value, f64::INFINITY);
    assert_eq!(s[8].value, f64::INFINITY);
}

#[test]
fn go_float_syntax() {
    for ok in [
        "1",
        "+3",
        "-0",
        ".5",
        "5.",
        "1e3",
        "1E+3",
        "-2.5e-3",
        "007",
        "1e-400",
        "5e-324",
        "1.7976931348623157e308",
        "inf",
        "-Infinity",
        "NaN",
        "nAn",
    ] {
        assert!(parse_float(ok).is_some(), "{ok}");
    }
    for bad in [
        "", ".", "e5", "1e", "1e+", "+nan", "-NaN", "infin", "0x10", "0x1p3", "1_000", "1,5",
        "1e309", "-1e309", "1\r", " 1", "1 ", "++1", "1..2",
    ] {
        assert!(parse_float(bad).is_none(), "{bad:?}");
    }
    assert_eq!(parse_float("1e-400"), Some(0.0));
    assert_eq!(parse_float("9007199254740993"), Some(9007199254740992.0));
}

#[test]
fn openmetrics_timestamps_are_truncated_like_go() {
    assert_eq!(seconds_to_ms(1520879607.789), 1520879607789);
    assert_eq!(seconds_to_ms(1.0009), 1000);
    assert_eq!(seconds_to_ms(-1.5), -1500);
    assert_eq!(seconds_to_ms(-0.0009), 0);
    assert_eq!(seconds_to_ms(1e300), i64::MIN);
    assert_eq!(seconds_to_ms(-1e300), i64::MIN);
    let s = om("a 1 1796023253.8039\nb 1 1e9\n# EOF\n");
    assert_eq!(s[0].timestamp_ms, Some(1796023253803));
    assert_eq!(s[1].timestamp_ms, Some(1_000_000_000_000));
}

#[test]
fn text_timestamps_are_unsigned_integers() {
    assert_eq!(
        text("a 1 9223372036854775807\n")[0].timestamp_ms,
        Some(i64::MAX)
    );
    assert_eq!(text("a 1 0007\n")[0].timestamp_ms, Some(7));
    for bad in [
        "a 1 -5\n",
        "a 1 +5\n",
        "a 1 1.5\n",
        "a 1 9223372036854775808\n",
        "a 1 2 3\n",
        "a 1 0x10\n",
    ] {
        err(bad.as_bytes(), Format::Text);
    }
}

#[test]
fn label_value_escapes_as_prometheus_undoes_them() {
    let s = text(
        "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n",
    );
    assert_eq!(
        s[0].labels,
        labels(&[
            ("path", "C:\\DIR\\FILE.TXT"),
            ("error", "Cannot find file:\n\"FILE.TXT\"")
        ])
    );
    // Unknown escapes stay as written; `\\n` is a backslash and an `n`.
    let s = text("m{a=\"x\\zy\",b=\"\\t\",c=\"\\\\n\"} 1\n");
    assert_eq!(
        s[0].labels,
        labels(&[("a", "x\\zy"), ("b", "\\t"), ("c", "\\n")])
    );
    let s = om("m{a=\"x\\zy\"} 1\n# EOF\n");
    assert_eq!(s[0].labels, labels(&[("a", "x\\zy")]));
}

#[test]
fn text_label_value_line_breaks_count_lines() {
    assert_eq!(err_line("m{a=\"1\n2\n3\"} 1\nbad\n", Format::Text), 4);
    let s = parse(b"m{a=\"1\n2\"} 1\nn 2\n", Format::Text).unwrap_or_default();
    assert_eq!(s[0].labels, labels(&[("a", "1\n2")]));
    assert_eq!(s[1].name, "n");
    assert_eq!(err_line("m{a=\"x\\\ny\"} 1\n", Format::Text), 1);
}

#[test]
fn unicode_label_values_and_braces_inside() {
    let s = text("m{a=\"héllo } , = {\"} 1\n");
    assert_eq!(s[0].labels, labels(&[("a", "héllo } , = {")]));
}

#[test]
fn text_is_lenient_about_blanks_and_commas() {
    let s = text("m{ a = \"1\" , b=\"2\", } 1\n");
    assert_eq!(s[0].labels, labels(&[("a", "1"), ("b", "2")]));
    let s = text("m{a=\"1\" b=\"2\"} 1\n");
    assert_eq!(s[0].labels, labels(&[("a", "1"), ("b", "2")]));
    assert!(text("m{} 1\n")[0].labels.is_empty());
    assert_eq!(text("m {a=\"b\"}\t1 \t\n")[0].value, 1.0);
    assert_eq!(text("m{a=\"b\"}7\n")[0].value, 7.0);
    assert_eq!(text("m-1\n")[0].value, -1.0);
    assert!(text("   \n\t\n# c\n").is_empty());
}

#[test]
fn text_refuses_what_prometheus_refuses() {
    for bad in [
        "  m 1\n",
        "\tm 1\n",
        "m 1\r\n",
        "\r\n",
        "m{,a=\"1\"} 1\n",
        "m{a=\"1\",,b=\"2\"} 1\n",
        "m{a=b} 1\n",
        "m{1a=\"x\"} 1\n",
        "m{a=\"x\",a=\"y\"} 1\n",
        "m{__name__=\"x\"} 1\n",
        "m{__name__=\"\"} 1\n",
        "{a=\"b\"} 1\n",
        "m\n",
        "m{a=\"b\"}{c=\"d\"} 1\n",
        "m 1 # {a=\"b\"} 1\n",
        "# TYPE m  counter\n",
        "# TYPE m counter \n",
        "# TYPE m\n",
        "# TYPE m unknown\n",
        "# TYPE \n",
        "# HELP m\u{e9}t\n",
    ] {
        err(bad.as_bytes(), Format::Text);
    }
    err(b"# HELP m bad \xff\n", Format::Text);
    err(b"m{a=\"\xc3\x28\"} 1\n", Format::Text);
}

#[test]
fn text_accepts_what_prometheus_accepts() {
    text("# TYPE m counter\n# TYPE m gauge\nm 1\n");
    text("# HELP m\n# HELP m   \nm 1\n");
    text("# TYPE m-counter\nm 1\n");
    text("#\tTYPE\tm\tcounter\nm 1\n");
    text("# HELP m a \\\\ backslash, a \\n newline and \\z\nm 1\n");
    text("# UNIT m seconds\n# EOF\n# TYPE\n# HELP\n#\nm 1\n");
    assert!(parse(b"# not \xff utf-8\nm 1\n", Format::Text).is_ok());
    let s = text("m{a=\"\",a=\"y\",b=\"z\"} 1\n");
    assert_eq!(
        s[0].labels,
        labels(&[("b", "z")]),
        "an empty value deletes the name"
    );
}

#[test]
fn a_nul_byte_where_a_line_starts_ends_text_input() {
    let s = parse(b"a 1\n\x00garbage {{{\nb 2\n", Format::Text).unwrap_or_default();
    assert_eq!(s.len(), 1);
    let s = parse(b"a 1\n  \x00\nb 2\n", Format::Text).unwrap_or_default();
    assert_eq!(s.len(), 1);
    let s = parse(b"a 1\n#\x00\nb 2\n", Format::Text).unwrap_or_default();
    assert_eq!(s.len(), 1);
    let s = parse(b"a 1\n# x\x00y\nb 2\n", Format::Text).unwrap_or_default();
    assert_eq!(s.len(), 2);
    err(b"a 1\x00\n", Format::Text);
    let s = parse(b"a{b=\"x\\\x00\"y\"} 1\n", Format::Text).unwrap_or_default();
    assert_eq!(s[0].labels, labels(&[("b", "x\\\0\"y")]));
}

#[test]
fn histogram_and_summary() {
    let s = text(
        "# TYPE h histogram\nh_bucket{le=\"0.05\"} 24054\nh_bucket{le=\"+Inf\"} 144320\n\
         h_sum 53423\nh_count 144320\n# TYPE s summary\ns{quantile=\"0.99\"} NaN\n\
         s_sum 1.7560473e+07\ns_count 2693\n",
    );
    assert_eq!(s.len(), 7);
    assert_eq!(s[1].labels, labels(&[("le", "+Inf")]));
    assert!(s[4].value.is_nan());
}

#[test]
fn errors_name_the_first_bad_line() {
    assert_eq!(err_line("a 1\nb\nc 3\n", Format::Text), 2);
    assert_eq!(err_line("a 1\nb{x=\"1\" 2\n", Format::Text), 2);
    assert_eq!(err_line("a 1\n\n9bad 1\n", Format::Text), 3);
    assert_eq!(err_line("a abc\n", Format::Text), 1);
    assert_eq!(err_line("# TYPE a nonsense\n", Format::Text), 1);
    assert_eq!(err_line("a{x=\"1\n", Format::Text), 1);
    assert_eq!(err_line("a infinity_and_beyond\n", Format::Text), 1);
}

#[test]
fn invalid_utf8_in_a_sample_is_an_error() {
    let e = parse(b"a 1\nb{x=\"\xff\"} 1\n", Format::Text);
    assert_eq!(e.map_err(|e| e.line), Err(2));
}

#[test]
fn empty_text_is_fine() {
    assert!(text("").is_empty());
    assert!(text("\n\n").is_empty());
    assert_eq!(text("a 1")[0].value, 1.0);
}

#[test]
fn openmetrics_created_and_exemplars_are_kept() {
    let s = om(
        "# TYPE foo counter\n# HELP foo Foos.\n# UNIT foo_seconds seconds\n\
         foo_total{a=\"b\"} 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879606.1\n\
         foo_created{a=\"b\"} 1520430000.123\n# EOF\n",
    );
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].name, "foo_total");
    assert_eq!(s[0].timestamp_ms, Some(1520879607789));
    let e = s[0].exemplar.as_deref().cloned();
    assert_eq!(
        e,
        Some(Exemplar {
            labels: labels(&[("trace_id", "KOO5S4vxi0o")]),
            value: 0.67,
            timestamp_ms: Some(1520879606100),
        })
    );
    assert_eq!(s[1].name, "foo_created");
    assert_eq!(s[1].value, 1520430000.123);
}

#[test]
fn openmetrics_exemplars_keep_their_escapes_and_lose_empty_labels() {
    let s = om("c_total 1 # {a=\"x\\\"y\",b=\"\",c=\"z\"} 2\n# EOF\n");
    let e = s[0].exemplar.as_deref().cloned();
    assert_eq!(
        e.map(|e| e.labels),
        Some(labels(&[("a", "x\\\"y"), ("c", "z")]))
    );
}

#[test]
fn openmetrics_exemplars_only_on_total_and_bucket() {
    om("h_bucket{le=\"1\"} 1 # {} 1\n# EOF\n");
    om("# TYPE g_total gauge\ng_total 1 # {a=\"b\"} 1\n# EOF\n");
    for name in ["g", "h_sum", "h_count", "c_created", "i_info"] {
        let body = format!("{name} 1 # {{a=\"b\"}} 1\n# EOF\n");
        err(body.as_bytes(), Format::OpenMetrics);
    }
}

#[test]
fn openmetrics_refuses_what_prometheus_refuses() {
    for bad in [
        "a 1\n",
        "",
        "a 1\n# EOF\nb 2\n",
        "a 1\n# EOF\n\n",
        "a 1\n# EOF \n",
        "a 1\n# EOFX\n",
        "a 1\n\n# EOF\n",
        "a  1\n# EOF\n",
        "a 1 \n# EOF\n",
        "a\t1\n# EOF\n",
        " a 1\n# EOF\n",
        "a {b=\"c\"} 1\n# EOF\n",
        "a{b=\"c\", d=\"e\"} 1\n# EOF\n",
        "a{b=\"c\",} 1\n# EOF\n",
        "a{b=\"c\"d=\"e\"} 1\n# EOF\n",
        "a{b=\"c\"}1\n# EOF\n",
        "a 1\r\n# EOF\n",
        "# hello\n# EOF\n",
        "#hello\n# EOF\n",
        "# HELP a\n# EOF\n",
        "# TYPE a untyped\n# EOF\n",
        "# TYPE a  gauge\n# EOF\n",
        "# UNIT a seconds\n# EOF\n",
        "# UNIT aseconds seconds\n# EOF\n",
        "# UNIT seconds seconds\n# EOF\n",
        "a 1 NaN\n# EOF\n",
        "a 1 +Inf\n# EOF\n",
        "a 1 2 3\n# EOF\n",
        "c_total 1 # {a=\"b\"}\n# EOF\n",
        "c_total 1 # {a=\"b\"} 1 NaN\n# EOF\n",
        "c_total 1 # {a=\"b\"} 1 \n# EOF\n",
        "c_total 1 #{a=\"b\"} 1\n# EOF\n",
        "c_total 1 # {a=\"b\"} 1\n",
        "a{b=\"c\nd\"} 1\n# EOF\n",
    ] {
        err(bad.as_bytes(), Format::OpenMetrics);
    }
}

#[test]
fn openmetrics_accepts_what_prometheus_accepts() {
    om("# EOF\n");
    om("a 1\n# EOF");
    om("# HELP a \n# UNIT a \n# TYPE a gauge\n# TYPE a gauge\na 1\n# EOF\n");
    om("# UNIT a_seconds seconds\na_seconds 1\n# EOF\n");
    om("a 1 -1.5\nb 1 1e300\n# EOF\n");
    om("c_total 1 # {a=\"1\",a=\"2\"} NaN\n# EOF\n");
    let s = om("# TYPE x_created gauge\nx_created 5\n# EOF\n");
    assert_eq!(s.len(), 1);
}

#[test]
fn openmetrics_error_lines() {
    assert_eq!(err_line("a 1\n", Format::OpenMetrics), 1);
    assert_eq!(err_line("", Format::OpenMetrics), 1);
    assert_eq!(err_line("a 1\n# EOF\nb 2\n", Format::OpenMetrics), 3);
    assert_eq!(
        err_line("# TYPE a untyped\n# EOF\n", Format::OpenMetrics),
        1
    );
    assert_eq!(
        err_line("a 1 # {x=\"1\"} notanumber\n# EOF\n", Format::OpenMetrics),
        1
    );
}

#[test]
fn content_type_detection() {
    let om_types = [
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "application/openmetrics-text",
        "Application/OpenMetrics-Text; version=1.0.0",
        "application/openmetrics-text;",
        "application/openmetrics-text ; version=1.0.0",
        "application/openmetrics-text; version=\"1.0.0\"",
        "application/openmetrics-text; version=0.0.1",
        "  application/openmetrics-text  ",
    ];
    for ct in om_types {
        assert_eq!(
            Format::from_content_type(Some(ct)),
            Format::OpenMetrics,
            "{ct}"
        );
    }
    let text_types = [
        "text/plain; version=0.0.4",
        "",
        "application/openmetrics-text; version",
        "application/openmetrics-text; version=",
        "application/openmetrics-text; version=\"1.0.0",
        "application/openmetrics-text; version=1.0.0; version=1.0.0",
        "application/openmetrics-text; version=1.0.0; VERSION=1.0.0",
        "application/openmetrics-textual",
        "application/; version=1.0.0",
        "application/openmetrics-text;;",
        "application/json",
    ];
    for ct in text_types {
        assert_eq!(Format::from_content_type(Some(ct)), Format::Text, "{ct}");
    }
    assert_eq!(Format::from_content_type(None), Format::Text);
}

#[test]
fn format_value_spellings() {
    assert_eq!(format_value(f64::NAN), "NaN");
    assert_eq!(format_value(f64::INFINITY), "+Inf");
    assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
    assert_eq!(format_value(0.25), "0.25");
    assert_eq!(format_value(1e300).parse::<f64>(), Ok(1e300));
}

/// Parses `body` fed in the given chunks; the result rendered with `{:?}` (NaN equals NaN).
fn parse_in_chunks(body: &[u8], format: Format, cuts: &[usize]) -> String {
    let mut out = Vec::new();
    let mut parser = Parser::new(format);
    let mut start = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(body.len())).collect();
    cuts.sort_unstable();
    cuts.push(body.len());
    for cut in cuts {
        if let Err(e) = parser.feed(&body[start..cut], |s| out.push(s.to_parsed())) {
            return format!("{:?}", Err::<(), _>(e));
        }
        start = cut;
    }
    match parser.finish(|s| out.push(s.to_parsed())) {
        Ok(()) => format!("{:?}", Ok::<_, ()>(out)),
        Err(e) => format!("{:?}", Err::<(), _>(e)),
    }
}

fn parse_whole(body: &[u8], format: Format) -> String {
    match parse(body, format) {
        Ok(v) => format!("{:?}", Ok::<_, ()>(v)),
        Err(e) => format!("{:?}", Err::<(), _>(e)),
    }
}

#[test]
fn chunks_give_the_same_result_as_a_whole_body() {
    let bodies: [(&[u8], Format); 6] = [
        (
            b"# HELP a x\na{b=\"c\nd\",e=\"\\\"\"} 1 5\n\n  # c\nb 2\n",
            Format::Text,
        ),
        (b"a 1\n\x00tail\n", Format::Text),
        (b"a{b=\"unterminated\n", Format::Text),
        (
            b"# TYPE c counter\nc_total 1 # {t=\"1\"} 2 3\n# EOF\n",
            Format::OpenMetrics,
        ),
        (b"a 1\n# EOF\nmore", Format::OpenMetrics),
        (b"a 1\n# EOF", Format::OpenMetrics),
    ];
    for (body, format) in bodies {
        let whole = parse_whole(body, format);
        for cut in 0..=body.len() {
            assert_eq!(
                parse_in_chunks(body, format, &[cut]),
                whole,
                "cut at {cut} of {:?}",
                String::from_utf8_lossy(body)
            );
        }
        let every_byte: Vec<usize> = (0..body.len()).collect();
        assert_eq!(parse_in_chunks(body, format, &every_byte), whole);
    }
}

#[test]
fn a_failed_parser_keeps_failing() {
    let mut parser = Parser::new(Format::Text);
    assert!(parser.feed(b"bad line\n", |_| {}).is_err());
    let again = parser.feed(b"a 1\n", |_| {});
    assert_eq!(again.map_err(|e| e.line), Err(1));
    assert!(parser.finish(|_| {}).is_err());
}

#[test]
fn sample_refs_borrow_without_copying() {
    let mut parser = Parser::new(Format::Text);
    let mut seen = Vec::new();
    let fed = parser.feed(b"m{a=\"x\\\\y\",b=\"plain\"} 2 7\n", |s| {
        let labels: Vec<(String, bool)> = s
            .labels()
            .map(|(n, v)| {
                let borrowed = matches!(v, std::borrow::Cow::Borrowed(_));
                (format!("{n}={v}"), borrowed)
            })
            .collect();
        seen.push((s.name().to_owned(), labels, s.value(), s.timestamp_ms()));
    });
    assert!(fed.is_ok());
    assert_eq!(
        seen,
        [(
            "m".to_owned(),
            vec![("a=x\\y".to_owned(), false), ("b=plain".to_owned(), true)],
            2.0,
            Some(7)
        )]
    );
}

fn scrape(body: &str, format: Format, ts: i64) -> Scraped {
    match parse_scrape(body.as_bytes(), format, ts) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

const T: i64 = 1_700_000_000_000;

#[test]
fn duplicates_keep_the_first_and_later_timestamps() {
    let s = scrape("a 1\na 2\nm{x=\"\"} 3\nm 4\n", Format::Text, T);
    let values: Vec<f64> = s.samples.iter().map(|p| p.value).collect();
    assert_eq!(values, [1.0, 3.0]);
    assert_eq!(s.skips.count(Skip::Duplicate), 2);
    assert_eq!(s.total, 4);

    let body = format!("a 1 {}\na 2 {}\na 3 {}\n", T - 2000, T - 1000, T - 3000);
    let s = scrape(&body, Format::Text, T);
    let values: Vec<f64> = s.samples.iter().map(|p| p.value).collect();
    assert_eq!(values, [1.0, 2.0]);
    assert_eq!(s.skips.count(Skip::OutOfOrder), 1);

    let s = scrape(
        "m{a=\"1\",b=\"2\"} 1\nm{b=\"2\",a=\"1\"} 2\nm{a=\"1\"} 3\n",
        Format::Text,
        T,
    );
    assert_eq!(
        s.samples.len(),
        2,
        "label order does not make another series"
    );

    let s = scrape("m{a=\"x\\ny\"} 1\nm{a=\"x\ny\"} 2\n", Format::Text, T);
    assert_eq!(
        s.samples.len(),
        1,
        "an escaped and a raw line break are the same value"
    );
    assert_eq!(s.skips.count(Skip::Duplicate), 1);

    let body = format!("a 1 {}\na 2\n", T - 1000);
    assert_eq!(scrape(&body, Format::Text, T).samples.len(), 2);
    let body = format!("a 1\na 2 {}\n", T - 1000);
    assert_eq!(scrape(&body, Format::Text, T).samples.len(), 1);
}

#[test]
fn timestamps_out_of_bounds_are_skipped() {
    let body = format!(
        "ok 1 {}\nahead 1 {}\nbehind 1 {}\nold 1 1\nmax 1 9223372036854775807\nnow 1\n",
        T + MAX_AHEAD_MS,
        T + MAX_AHEAD_MS + 1,
        T - MAX_BEHIND_MS - 1,
    );
    let s = scrape(&body, Format::Text, T);
    let names: Vec<&str> = s.samples.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ok", "now"]);
    assert_eq!(s.skips.count(Skip::OutOfBounds), 4);
    assert_eq!(s.skips.samples(), 4);
    assert_eq!(s.skips.examples()[0].name, "ahead");
    let s = scrape("a 1 1e300\n# EOF\n", Format::OpenMetrics, T);
    assert_eq!(s.skips.count(Skip::OutOfBounds), 1);
}

#[test]
fn exemplar_storage_rules() {
    let s = scrape(
        &format!(
            "c_total 1 # {{a=\"1\"}} 1\n\
             c_total 2 # {{a=\"2\"}} 2\n\
             d_total 1 # {{t=\"{}\"}} 1\n\
             e_total 1 1 # {{a=\"1\"}} 1\n\
             f_total 1 # {{a=\"1\"}} 1\n\
             f_total 2 1 # {{a=\"2\"}} 2 {}\n# EOF\n",
            "x".repeat(128),
            (T + 60_000) as f64 / 1000.0
        ),
        Format::OpenMetrics,
        T,
    );
    let stored: Vec<(String, bool)> = s
        .samples
        .iter()
        .map(|p| (p.name.clone(), p.exemplar.is_some()))
        .collect();
    assert_eq!(
        stored,
        [
            ("c_total".to_owned(), true),
            ("d_total".to_owned(), false),
            ("f_total".to_owned(), true)
        ]
    );
    assert_eq!(s.skips.count(Skip::ExemplarOutOfOrder), 1);
    assert_eq!(s.skips.count(Skip::ExemplarLabelsTooLong), 1);
    assert_eq!(s.skips.count(Skip::ExemplarWithoutSeries), 1);
    assert_eq!(s.exemplars_only.len(), 1, "f_total's second exemplar");
    assert_eq!(
        s.exemplars_only[0]
            .exemplar
            .as_deref()
            .and_then(|e| e.timestamp_ms),
        Some(T + 60_000)
    );

    let s = scrape(
        "c_total 1 # {a=\"1\"} 1\nc_total 1 # {a=\"1\"} 1\nn_total 1 # {a=\"1\"} NaN\n# EOF\n",
        Format::OpenMetrics,
        T,
    );
    assert_eq!(s.skips.count(Skip::ExemplarDuplicate), 1);
    let s = scrape(
        "c_total 1 # {id=\"é\"} 1\n# EOF\n"
            .replace('é', &"é".repeat(126))
            .as_str(),
        Format::OpenMetrics,
        T,
    );
    assert!(s.samples[0].exemplar.is_some(), "128 characters, not bytes");
}

mod prop {
    use super::super::*;
    use super::parse_in_chunks;
    use proptest::prelude::*;

    fn metric_name() -> impl Strategy<Value = String> {
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}"
    }

    fn label_name() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_]{0,12}".prop_filter("reserved", |n| n != "__name__")
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            (-1_000_000i64..1_000_000).prop_map(|v| v as f64),
        ]
    }

    fn sample() -> impl Strategy<Value = ParsedSample> {
        (
            metric_name(),
            proptest::collection::btree_map(label_name(), ".+", 0..4),
            value(),
            proptest::option::of(0..i64::MAX),
        )
            .prop_map(|(name, labels, value, timestamp_ms)| ParsedSample {
                name,
                labels: labels.into_iter().collect(),
                value,
                timestamp_ms,
                exemplar: None,
            })
    }

    fn render_labels(out: &mut String, labels: &[(String, String)]) {
        out.push('{');
        for (j, (n, v)) in labels.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(n);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }

    fn render(samples: &[ParsedSample], with_types: bool) -> String {
        let mut out = String::new();
        for (i, s) in samples.iter().enumerate() {
            if with_types && i % 2 == 0 {
                out.push_str(&format!("# HELP {} some help \\\\ text\n", s.name));
            }
            out.push_str(&s.name);
            if !s.labels.is_empty() {
                render_labels(&mut out, &s.labels);
            }
            out.push(' ');
            out.push_str(&format_value(s.value));
            if let Some(ts) = s.timestamp_ms {
                out.push_str(&format!(" {ts}"));
            }
            out.push('\n');
        }
        out
    }

    /// OpenMetrics: seconds with three decimals, exemplars on `_total` series.
    fn render_openmetrics(samples: &[ParsedSample]) -> String {
        let mut out = String::new();
        for s in samples {
            out.push_str(&s.name);
            if !s.labels.is_empty() {
                render_labels(&mut out, &s.labels);
            }
            out.push(' ');
            out.push_str(&format_value(s.value));
            if let Some(ts) = s.timestamp_ms {
                out.push_str(&format!(" {}.{:03}", ts / 1000, ts % 1000));
            }
            if let Some(e) = &s.exemplar {
                out.push_str(" # ");
                render_labels(&mut out, &e.labels);
                out.push(' ');
                out.push_str(&format_value(e.value));
            }
            out.push('\n');
        }
        out.push_str("# EOF\n");
        out
    }

    fn same(a: &ParsedSample, b: &ParsedSample) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&input, Format::Text);
            let _ = parse(&input, Format::OpenMetrics);
            let _ = parse_scrape(&input, Format::Text, 0);
            let _ = parse_scrape(&input, Format::OpenMetrics, i64::MIN);
        }

        #[test]
        fn arbitrary_text_never_panics(input in "[ -~\t\n\r\0{}\"\\\\#=,é]{0,300}") {
            let _ = parse(input.as_bytes(), Format::Text);
            let _ = parse(input.as_bytes(), Format::OpenMetrics);
            let _ = parse_scrape(input.as_bytes(), Format::Text, i64::MAX);
        }

        #[test]
        fn chunked_input_parses_like_whole_input(
            input in "([a-c_]{1,3}(\\{[a-c]{1,2}=\"[a-c\n\\\\\"]{0,4}\",?\\})? ?[0-9. #{}a-z\"]{0,8}\n?){0,6}(# EOF\n?)?",
            om in any::<bool>(),
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let format = if om { Format::OpenMetrics } else { Format::Text };
            let whole = super::parse_whole(input.as_bytes(), format);
            prop_assert_eq!(parse_in_chunks(input.as_bytes(), format, &cuts), whole);
        }

        #[test]
        fn chunked_bytes_never_panic(
            input in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..10),
        ) {
            for format in [Format::Text, Format::OpenMetrics] {
                let whole = super::parse_whole(&input, format);
                prop_assert_eq!(parse_in_chunks(&input, format, &cuts), whole);
            }
        }

        #[test]
        fn exposition_round_trips(samples in proptest::collection::vec(sample(), 0..20), with_types in any::<bool>()) {
            let body = render(&samples, with_types);
            let parsed = parse(body.as_bytes(), Format::Text);
            prop_assert!(parsed.is_ok(), "{:?} for {:?}", parsed, body);
            let parsed = parsed.unwrap_or_default();
            prop_assert_eq!(parsed.len(), samples.len());
            for (a, b) in parsed.iter().zip(samples.iter()) {
                prop_assert!(same(a, b), "{:?} != {:?}", a, b);
            }
        }

        #[test]
        fn openmetrics_round_trips(
            samples in proptest::collection::vec(sample(), 0..20),
            exemplar_labels in proptest::collection::btree_map(label_name(), "[a-z0-9]{1,8}", 0..3),
            exemplar_value in value(),
        ) {
            let samples: Vec<ParsedSample> = samples
                .into_iter()
                .enumerate()
                .map(|(i, mut s)| {
                    // Whole seconds: OpenMetrics timestamps are floats in seconds.
                    s.timestamp_ms = s.timestamp_ms.map(|t| (t % 4_000_000_000) * 1000);
                    if i % 2 == 0 {
                        s.name.push_str("_total");
                        s.exemplar = Some(Box::new(Exemplar {
                            labels: exemplar_labels.clone().into_iter().collect(),
                            value: exemplar_value,
                            timestamp_ms: None,
                        }));
                    }
                    s
                })
                .collect();
            let body = render_openmetrics(&samples);
            let parsed = parse(body.as_bytes(), Format::OpenMetrics);
            prop_assert!(parsed.is_ok(), "{:?} for {:?}", parsed, body);
            let parsed = parsed.unwrap_or_default();
            prop_assert_eq!(parsed.len(), samples.len());
            for (a, b) in parsed.iter().zip(samples.iter()) {
                prop_assert!(same(a, b), "{:?} != {:?}", a, b);
            }
        }
    }
}
