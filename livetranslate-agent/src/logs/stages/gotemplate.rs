//! The part of Go's `text/template` that Promtail users write in `template` and `replace`
//! stages, compiled once, executed per line.
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and `{{/* */}}` comments;
//! fields of the data (`.Value`, `.Entry`, `.level`), `.`, `$`, variables (`$x := ...`,
//! `$x = ...`); string (`"..."`, `` `...` ``), number, `true`/`false`/`nil` literals;
//! pipelines `a | f b`; parenthesised pipelines; `if`/`else if`/`else`/`end`,
//! `with`/`else`/`end`. Functions: Go's `and or not eq ne lt le gt ge len print printf
//! println`; Promtail's `ToLower ToUpper Replace Trim TrimLeft TrimRight TrimPrefix
//! TrimSuffix TrimSpace Hash Sha2Hash regexReplaceAll regexReplaceAllLiteral`; and the
//! Sprig functions on strings and numbers Promtail also exposes (`lower upper title trim
//! trimAll trimPrefix trimSuffix replace contains hasPrefix hasSuffix repeat substr trunc
//! nospace abbrev quote squote cat default empty coalesce ternary toString atoi int int64
//! float64 add sub mul div mod max min regexMatch regexFind regexQuoteMeta b64enc b64dec
//! sha256sum indent nindent`). Anything else — `range`, `define`, `template`, `block`,
//! unknown functions, wrong argument counts — is refused when the template is compiled.
//!
//! As in Go, a missing field prints `<no value>`, and an error while executing (a function
//! given a missing value, a comparison of a string with a number) fails the whole template.

use std::borrow::Cow;
use std::fmt::Write as _;

use regex::Regex;

/// A compiled template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

/// What a template reads: the fields of `.`.
pub trait Data {
    /// The value of field `name`, `None` when missing.
    fn field(&self, name: &str) -> Option<Cow<'_, str>>;
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipeline {
    /// `$x :=` (declare) or `$x =` (assign).
    var: Option<(String, bool)>,
    cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
enum Command {
    /// A function call: the function, its explicit arguments.
    Call(Func, Vec<Arg>, Option<Regex>),
    /// A plain operand.
    Operand(Arg),
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    /// `.a.b` (on `.`) or `$x.a` (on a variable).
    Field(Option<String>, Vec<String>),
    Var(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe(Box<Pipeline>),
}

/// A value while executing.
#[derive(Debug, Clone, PartialEq)]
enum V<'a> {
    /// A missing field (Go's invalid value).
    Missing,
    Nil,
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl V<'_> {
    fn truth(&self) -> bool {
        match self {
            V::Missing | V::Nil => false,
            V::Str(s) => !s.is_empty(),
            V::Int(i) => *i != 0,
            V::Float(f) => *f != 0.0,
            V::Bool(b) => *b,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            V::Missing => "invalid",
            V::Nil => "nil",
            V::Str(_) => "string",
            V::Int(_) => "int",
            V::Float(_) => "float64",
            V::Bool(_) => "bool",
        }
    }

    fn into_owned(self) -> V<'static> {
        match self {
            V::Missing => V::Missing,
            V::Nil => V::Nil,
            V::Str(s) => V::Str(Cow::Owned(s.into_owned())),
            V::Int(i) => V::Int(i),
            V::Float(f) => V::Float(f),
            V::Bool(b) => V::Bool(b),
        }
    }

    /// Go's `fmt` `%v`.
    fn write(&self, out: &mut String) {
        match self {
            V::Missing | V::Nil => out.push_str("<no value>"),
            V::Str(s) => out.push_str(s),
            V::Int(i) => {
                let _ = write!(out, "{i}");
            }
            V::Float(f) => out.push_str(&go_float(*f)),
            V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
    }

    fn to_display(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

/// Go's `%v` of a float64 (`strconv` 'g', shortest): exponent form below 1e-4 and from 1e6.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return "0".to_owned();
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        f.to_string()
    }
}

/// Execution failure (Go's `template: ... error calling X: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecError(pub String);

type Exec<T> = Result<T, ExecError>;

fn fail<T>(msg: impl Into<String>) -> Exec<T> {
    Err(ExecError(msg.into()))
}

macro_rules! funcs {
    ($($name:literal => $variant:ident ($min:expr, $max:expr)),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Func { $($variant),* }
        impl Func {
            fn lookup(name: &str) -> Option<Func> {
                match name { $($name => Some(Func::$variant),)* _ => None }
            }
            fn name(self) -> &'static str {
                match self { $(Func::$variant => $name),* }
            }
            /// (fewest, most) arguments; most `usize::MAX` for variadic.
            fn arity(self) -> (usize, usize) {
                match self { $(Func::$variant => ($min, $max)),* }
            }
        }
    };
}

const VAR: usize = usize::MAX;

funcs! {
    "and" => And(1, VAR),
    "or" => Or(1, VAR),
    "not" => Not(1, 1),
    "eq" => Eq(2, VAR),
    "ne" => Ne(2, 2),
    "lt" => Lt(2, 2),
    "le" => Le(2, 2),
    "gt" => Gt(2, 2),
    "ge" => Ge(2, 2),
    "len" => Len(1, 1),
    "print" => Print(0, VAR),
    "printf" => Printf(1, VAR),
    "println" => Println(0, VAR),
    "ToLower" => ToLower(1, 1),
    "ToUpper" => ToUpper(1, 1),
    "Replace" => Replace(4, 4),
    "Trim" => Trim(2, 2),
    "TrimLeft" => TrimLeft(2, 2),
    "TrimRight" => TrimRight(2, 2),
    "TrimPrefix" => TrimPrefix(2, 2),
    "TrimSuffix" => TrimSuffix(2, 2),
    "TrimSpace" => TrimSpace(1, 1),
    "Hash" => Hash(2, 2),
    "Sha2Hash" => Sha2Hash(2, 2),
    "regexReplaceAll" => RegexReplaceAll(3, 3),
    "regexReplaceAllLiteral" => RegexReplaceAllLiteral(3, 3),
    "regexMatch" => RegexMatch(2, 2),
    "regexFind" => RegexFind(2, 2),
    "regexQuoteMeta" => RegexQuoteMeta(1, 1),
    "lower" => Lower(1, 1),
    "upper" => Upper(1, 1),
    "title" => Title(1, 1),
    "trim" => SprigTrim(1, 1),
    "trimAll" => TrimAll(2, 2),
    "trimPrefix" => SprigTrimPrefix(2, 2),
    "trimSuffix" => SprigTrimSuffix(2, 2),
    "replace" => SprigReplace(3, 3),
    "contains" => Contains(2, 2),
    "hasPrefix" => HasPrefix(2, 2),
    "hasSuffix" => HasSuffix(2, 2),
    "repeat" => Repeat(2, 2),
    "substr" => Substr(3, 3),
    "trunc" => Trunc(2, 2),
    "nospace" => Nospace(1, 1),
    "abbrev" => Abbrev(2, 2),
    "quote" => Quote(0, VAR),
    "squote" => Squote(0, VAR),
    "cat" => Cat(0, VAR),
    "default" => Default(1, 2),
    "empty" => Empty(1, 1),
    "coalesce" => Coalesce(0, VAR),
    "ternary" => Ternary(3, 3),
    "toString" => ToString(1, 1),
    "atoi" => Atoi(1, 1),
    "int" => Int(1, 1),
    "int64" => Int64(1, 1),
    "float64" => Float64(1, 1),
    "add" => Add(0, VAR),
    "sub" => Sub(2, 2),
    "mul" => Mul(1, VAR),
    "div" => Div(2, 2),
    "mod" => Mod(2, 2),
    "max" => Max(1, VAR),
    "min" => Min(1, VAR),
    "b64enc" => B64enc(1, 1),
    "b64dec" => B64dec(1, 1),
    "sha256sum" => Sha256sum(1, 1),
    "indent" => Indent(2, 2),
    "nindent" => Nindent(2, 2),
}

/// Functions whose first argument is a regular expression (compiled once when literal).
fn regex_func(f: Func) -> bool {
    matches!(
        f,
        Func::RegexReplaceAll | Func::RegexReplaceAllLiteral | Func::RegexMatch | Func::RegexFind
    )
}

// ---------------------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    VarField(String, Vec<String>),
    Dot,
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
}

fn lex_action(src: &str) -> Result<Vec<Tok>, String> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let fields = |i: &mut usize| -> Vec<String> {
        let mut f = Vec::new();
        while *i < b.len()
            && b[*i] == b'.'
            && b.get(*i + 1)
                .is_some_and(|&c| ident_char(c) && !c.is_ascii_digit())
        {
            let start = *i + 1;
            *i += 1;
            while *i < b.len() && ident_char(b[*i]) {
                *i += 1;
            }
            f.push(src[start..*i].to_owned());
        }
        f
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'|' => {
                if b.get(i + 1) == Some(&b'|') {
                    return Err("`||` is not a template operator; use `or`".to_owned());
                }
                out.push(Tok::Pipe);
                i += 1;
            }
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
                // `(...).field` is not supported.
                if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(|&c| ident_char(c)) {
                    return Err("fields of a parenthesised pipeline are not supported".to_owned());
                }
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            b'"' | b'`' => {
                let (s, n) = super::go::unquote_prefix(&src[i..])?;
                out.push(Tok::Str(s));
                i += n;
            }
            b'\'' => return Err("character constants are not supported".to_owned()),
            b'.' => {
                let f = fields(&mut i);
                if f.is_empty() {
                    if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                        // `.5`
                        let start = i;
                        i += 1;
                        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'e' || b[i] == b'_')
                        {
                            i += 1;
                        }
                        out.push(number(&src[start..i])?);
                    } else {
                        out.push(Tok::Dot);
                        i += 1;
                    }
                } else {
                    out.push(Tok::Field(f));
                }
            }
            b'$' => {
                let start = i;
                i += 1;
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                let name = src[start..i].to_owned();
                let f = fields(&mut i);
                out.push(Tok::VarField(name, f));
            }
            b'-' | b'+' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'.'
                        || b[i] == b'_'
                        || ((b[i] == b'-' || b[i] == b'+')
                            && matches!(b[i - 1], b'e' | b'E' | b'p' | b'P')))
                {
                    i += 1;
                }
                out.push(number(&src[start..i])?);
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(|&c| ident_char(c)) {
                    return Err(format!(
                        "`{}.` is not supported (methods and package names are not)",
                        &src[start..i]
                    ));
                }
                out.push(Tok::Ident(src[start..i].to_owned()));
            }
            other => return Err(format!("unexpected {:?} in action", other as char)),
        }
    }
    Ok(out)
}

fn number(s: &str) -> Result<Tok, String> {
    let clean = s.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d.to_owned()),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean).to_owned()),
    };
    let int = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bn) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        i64::from_str_radix(bn, 2).ok()
    } else if digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&digits[1..], 8).ok()
    } else {
        digits.parse::<i64>().ok()
    };
    if let Some(v) = int {
        return Ok(Tok::Int(if neg { -v } else { v }));
    }
    match digits.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Tok::Float(if neg { -f } else { f })),
        _ => Err(format!("bad number syntax: {s:?}")),
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn pipeline(&mut self, allow_decl: bool) -> Result<Pipeline, String> {
        let mut var = None;
        if let (Some(Tok::VarField(name, f)), Some(t @ (Tok::Declare | Tok::Assign))) =
            (self.toks.get(self.pos), self.toks.get(self.pos + 1))
        {
            if !allow_decl {
                return Err("variable declaration not allowed here".to_owned());
            }
            if !f.is_empty() || name == "$" {
                return Err(format!("cannot assign to {name}"));
            }
            var = Some((name.clone(), *t == Tok::Declare));
            self.pos += 2;
        }
        let mut cmds = Vec::new();
        loop {
            cmds.push(self.command(!cmds.is_empty())?);
            match self.peek() {
                Some(Tok::Pipe) => self.pos += 1,
                _ => break,
            }
        }
        Ok(Pipeline { var, cmds })
    }

    fn operand(&mut self) -> Result<Option<Arg>, String> {
        let Some(t) = self.peek().cloned() else {
            return Ok(None);
        };
        let arg = match t {
            Tok::Dot => Arg::Dot,
            Tok::Field(f) => Arg::Field(None, f),
            Tok::VarField(v, f) if f.is_empty() => Arg::Var(v),
            Tok::VarField(v, f) => Arg::Field(Some(v), f),
            Tok::Str(s) => Arg::Str(s),
            Tok::Int(i) => Arg::Int(i),
            Tok::Float(f) => Arg::Float(f),
            Tok::Ident(id) if id == "true" => Arg::Bool(true),
            Tok::Ident(id) if id == "false" => Arg::Bool(false),
            Tok::Ident(id) if id == "nil" => Arg::Nil,
            Tok::Open => {
                self.pos += 1;
                let p = self.pipeline(false)?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("unclosed left paren".to_owned());
                }
                self.pos += 1;
                return Ok(Some(Arg::Pipe(Box::new(p))));
            }
            _ => return Ok(None),
        };
        self.pos += 1;
        Ok(Some(arg))
    }

    fn command(&mut self, piped: bool) -> Result<Command, String> {
        if let Some(Tok::Ident(name)) = self.peek().cloned() {
            if !matches!(name.as_str(), "true" | "false" | "nil") {
                self.pos += 1;
                let func = Func::lookup(&name).ok_or_else(|| unknown_function(&name))?;
                let mut args = Vec::new();
                while let Some(a) = self.operand()? {
                    args.push(a);
                }
                let n = args.len() + usize::from(piped);
                let (min, max) = func.arity();
                if n < min || n > max {
                    let want = if min == max {
                        format!("{min}")
                    } else if max == VAR {
                        format!("at least {min}")
                    } else {
                        format!("{min} to {max}")
                    };
                    return Err(format!(
                        "wrong number of args for {name}: want {want} got {n}"
                    ));
                }
                let re = match (regex_func(func), args.first()) {
                    (true, Some(Arg::Str(expr))) => Some(Regex::new(expr).map_err(|e| {
                        format!("{name}: invalid regular expression {expr:?}: {e}")
                    })?),
                    _ => None,
                };
                return Ok(Command::Call(func, args, re));
            }
        }
        let Some(a) = self.operand()? else {
            return Err(match self.peek() {
                None => "missing value for command".to_owned(),
                Some(t) => format!("unexpected {t:?} in operand"),
            });
        };
        if piped {
            return Err("non-function in a pipeline: only functions can follow `|`".to_owned());
        }
        if let Some(t) = self.peek() {
            if !matches!(t, Tok::Pipe | Tok::Close) {
                return Err(format!("can't give argument to non-function {a:?}"));
            }
        }
        Ok(Command::Operand(a))
    }
}

fn unknown_function(name: &str) -> String {
    match name {
        "range" | "define" | "template" | "block" | "break" | "continue" => {
            format!("`{name}` is not supported in pipeline templates")
        }
        "else" | "end" | "if" | "with" => format!("unexpected `{name}`"),
        _ => format!("function {name:?} not defined"),
    }
}

/// One raw piece of a template: text, or an action's inside.
enum Piece<'a> {
    Text(&'a str),
    Action(&'a str),
}

fn split(src: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let after = &rest[open + 2..];
        let trim_before = after.starts_with("- ")
            || after.starts_with("-\t")
            || after.starts_with("-\n")
            || after.starts_with("-\r");
        if trim_before {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        let inner_start = if trim_before { 1 } else { 0 };
        let body = &after[inner_start..];
        let close = find_close(body).ok_or_else(|| "unclosed action".to_owned())?;
        let mut inner = &body[..close];
        trim_next = false;
        if inner.ends_with(" -")
            || inner.ends_with("\t-")
            || inner.ends_with("\n-")
            || inner.ends_with("\r-")
        {
            inner = &inner[..inner.len() - 1];
            trim_next = true;
        }
        let trimmed = inner.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err("unclosed comment".to_owned());
            }
        } else {
            pieces.push(Piece::Action(inner));
        }
        rest = &body[close + 2..];
    }
    let mut text = rest;
    if trim_next {
        text = text.trim_start_matches([' ', '\t', '\r', '\n']);
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The `}}` closing an action, skipping quoted strings.
fn find_close(body: &str) -> Option<usize> {
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

enum Block {
    End,
    Else(Option<Pipeline>),
}

impl Template {
    /// Compiles a template.
    pub fn new(src: &str) -> Result<Template, String> {
        let pieces = split(src)?;
        let mut it = pieces.into_iter().peekable();
        let (nodes, end) = parse_list(&mut it)?;
        match end {
            None => Ok(Template { nodes }),
            Some(Block::End) => Err("unexpected {{end}}".to_owned()),
            Some(Block::Else(_)) => Err("unexpected {{else}}".to_owned()),
        }
    }

    /// Runs the template over `data` into `out`.
    pub fn execute(&self, data: &dyn Data, out: &mut String) -> Result<(), ExecError> {
        let mut st = State {
            data,
            vars: vec![("$".to_owned(), Dot::Root)],
        };
        st.list(&self.nodes, &Dot::Root, out)
    }
}

type Pieces<'a> = std::iter::Peekable<std::vec::IntoIter<Piece<'a>>>;

fn parse_list(it: &mut Pieces<'_>) -> Result<(Vec<Node>, Option<Block>), String> {
    let mut nodes = Vec::new();
    while let Some(p) = it.next() {
        match p {
            Piece::Text(t) => nodes.push(Node::Text(t.to_owned())),
            Piece::Action(a) => {
                let toks = lex_action(a)?;
                match toks.first() {
                    None => return Err("missing value for command".to_owned()),
                    Some(Tok::Ident(k)) if k == "end" => {
                        if toks.len() != 1 {
                            return Err("unexpected tokens after {{end}}".to_owned());
                        }
                        return Ok((nodes, Some(Block::End)));
                    }
                    Some(Tok::Ident(k)) if k == "else" => {
                        if toks.len() == 1 {
                            return Ok((nodes, Some(Block::Else(None))));
                        }
                        if toks.get(1) == Some(&Tok::Ident("if".to_owned())) {
                            let mut p = Parser {
                                toks: toks[2..].to_vec(),
                                pos: 0,
                            };
                            let pipe = p.pipeline(true)?;
                            check_end(&p)?;
                            return Ok((nodes, Some(Block::Else(Some(pipe)))));
                        }
                        return Err("only `else` and `else if` are supported".to_owned());
                    }
                    Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                        let is_if = k == "if";
                        let mut p = Parser {
                            toks: toks[1..].to_vec(),
                            pos: 0,
                        };
                        let pipe = p.pipeline(true)?;
                        check_end(&p)?;
                        nodes.push(parse_branches(it, is_if, pipe)?);
                    }
                    _ => {
                        let mut p = Parser { toks, pos: 0 };
                        let pipe = p.pipeline(true)?;
                        check_end(&p)?;
                        nodes.push(Node::Action(pipe));
                    }
                }
            }
        }
    }
    Ok((nodes, None))
}

fn check_end(p: &Parser) -> Result<(), String> {
    match p.peek() {
        None => Ok(()),
        Some(t) => Err(format!("unexpected {t:?} in command")),
    }
}

fn parse_branches(it: &mut Pieces<'_>, is_if: bool, first: Pipeline) -> Result<Node, String> {
    let mut branches = Vec::new();
    let mut cond = first;
    loop {
        let (body, end) = parse_list(it)?;
        match end {
            None => {
                return Err(format!(
                    "unexpected EOF: missing {{{{end}}}} of {}",
                    if is_if { "if" } else { "with" }
                ))
            }
            Some(Block::End) => {
                branches.push((cond, body));
                break Ok(build(is_if, branches, Vec::new()));
            }
            Some(Block::Else(None)) => {
                branches.push((cond, body));
                let (otherwise, end) = parse_list(it)?;
                if !matches!(end, Some(Block::End)) {
                    return Err("expected {{end}} after {{else}}".to_owned());
                }
                break Ok(build(is_if, branches, otherwise));
            }
            Some(Block::Else(Some(next))) => {
                if !is_if {
                    return Err("`else if` inside `with` is not supported".to_owned());
                }
                branches.push((cond, body));
                cond = next;
            }
        }
    }
}

fn build(is_if: bool, mut branches: Vec<(Pipeline, Vec<Node>)>, otherwise: Vec<Node>) -> Node {
    if is_if {
        Node::If {
            branches,
            otherwise,
        }
    } else {
        let (pipe, body) = branches.remove(0);
        Node::With {
            pipe,
            body,
            otherwise,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Execution

#[derive(Debug, Clone)]
enum Dot {
    Root,
    Val(V<'static>),
}

struct State<'d> {
    data: &'d dyn Data,
    vars: Vec<(String, Dot)>,
}

impl<'d> State<'d> {
    fn list(&mut self, nodes: &[Node], dot: &Dot, out: &mut String) -> Exec<()> {
        let mark = self.vars.len();
        for n in nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.var.is_none() {
                        v.write(out);
                    }
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut done = false;
                    for (cond, body) in branches {
                        let c = self.pipeline(cond, dot)?;
                        if c.truth() {
                            self.list(body, dot, out)?;
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        self.list(otherwise, dot, out)?;
                    }
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self.pipeline(pipe, dot)?;
                    if v.truth() {
                        let inner = Dot::Val(v.into_owned());
                        self.list(body, &inner, out)?;
                    } else {
                        self.list(otherwise, dot, out)?;
                    }
                }
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Dot) -> Exec<V<'d>> {
        let mut last: Option<V<'d>> = None;
        for cmd in &p.cmds {
            last = Some(self.command(cmd, dot, last.take())?);
        }
        let v = last.unwrap_or(V::Missing);
        if let Some((name, declare)) = &p.var {
            let d = Dot::Val(v.clone().into_owned());
            if *declare {
                self.vars.push((name.clone(), d));
            } else {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = d,
                    None => return fail(format!("undefined variable: {name}")),
                }
            }
        }
        Ok(v)
    }

    fn command(&mut self, cmd: &Command, dot: &Dot, piped: Option<V<'d>>) -> Exec<V<'d>> {
        match cmd {
            Command::Operand(a) => self.arg(a, dot),
            Command::Call(f, args, re) => {
                // `and` / `or` evaluate lazily.
                if matches!(f, Func::And | Func::Or) {
                    let want = *f == Func::Or;
                    let mut last = V::Missing;
                    for a in args {
                        last = self.arg(a, dot)?;
                        if last.truth() == want {
                            return Ok(last);
                        }
                    }
                    if let Some(p) = piped {
                        last = p;
                    }
                    return Ok(last);
                }
                let mut vals = Vec::with_capacity(args.len() + 1);
                for a in args {
                    vals.push(self.arg(a, dot)?);
                }
                if let Some(p) = piped {
                    vals.push(p);
                }
                call(*f, vals, re.as_ref())
            }
        }
    }

    fn arg(&mut self, a: &Arg, dot: &Dot) -> Exec<V<'d>> {
        Ok(match a {
            Arg::Dot => self.dot_value(dot),
            Arg::Field(base, fields) => {
                let on = match base {
                    None => dot.clone(),
                    Some(v) => self.var(v)?,
                };
                let cur = match (&on, fields.first()) {
                    (Dot::Root, Some(name)) => self.data.field(name).map_or(V::Missing, V::Str),
                    (Dot::Val(v), Some(name)) => {
                        return fail(format!("can't evaluate field {name} in type {}", v.kind()))
                    }
                    (_, None) => V::Missing,
                };
                if let Some(name) = fields.get(1) {
                    return match cur {
                        V::Missing | V::Nil => fail(format!("nil pointer evaluating .{name}")),
                        other => fail(format!(
                            "can't evaluate field {name} in type {}",
                            other.kind()
                        )),
                    };
                }
                cur
            }
            Arg::Var(v) => {
                let d = self.var(v)?;
                self.dot_value(&d)
            }
            Arg::Str(s) => V::Str(Cow::Owned(s.clone())),
            Arg::Int(i) => V::Int(*i),
            Arg::Float(f) => V::Float(*f),
            Arg::Bool(b) => V::Bool(*b),
            Arg::Nil => return fail("nil is not a command"),
            Arg::Pipe(p) => self.pipeline(p, dot)?,
        })
    }

    fn var(&self, name: &str) -> Exec<Dot> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, d)) => Ok(d.clone()),
            None => fail(format!("undefined variable: {name}")),
        }
    }

    fn dot_value(&self, dot: &Dot) -> V<'d> {
        match dot {
            // The data map itself: Go prints `map[...]`; only its truth matters in practice.
            Dot::Root => V::Str(Cow::Borrowed("map[]")),
            Dot::Val(v) => v.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Functions

fn want_str<'a>(f: Func, v: V<'a>) -> Exec<Cow<'a, str>> {
    match v {
        V::Str(s) => Ok(s),
        V::Missing | V::Nil => fail(format!(
            "error calling {}: invalid value; expected string",
            f.name()
        )),
        other => fail(format!(
            "error calling {}: wrong type for value; expected string; got {}",
            f.name(),
            other.kind()
        )),
    }
}

fn want_int(f: Func, v: &V<'_>) -> Exec<i64> {
    match v {
        V::Int(i) => Ok(*i),
        V::Missing | V::Nil => fail(format!(
            "error calling {}: invalid value; expected int",
            f.name()
        )),
        other => fail(format!(
            "error calling {}: wrong type for value; expected int; got {}",
            f.name(),
            other.kind()
        )),
    }
}

/// Sprig's `toInt64`-style conversion of any value.
fn to_i64(v: &V<'_>) -> i64 {
    match v {
        V::Int(i) => *i,
        V::Float(f) => *f as i64,
        V::Bool(b) => i64::from(*b),
        V::Str(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64))
            .unwrap_or(0),
        V::Missing | V::Nil => 0,
    }
}

fn to_f64(v: &V<'_>) -> f64 {
    match v {
        V::Int(i) => *i as f64,
        V::Float(f) => *f,
        V::Bool(b) => f64::from(u8::from(*b)),
        V::Str(s) => s.trim().parse().unwrap_or(0.0),
        V::Missing | V::Nil => 0.0,
    }
}

/// Sprig's `strval`: any value as text (`nil` → "").
fn strval(v: &V<'_>) -> String {
    match v {
        V::Missing | V::Nil => String::new(),
        other => other.to_display(),
    }
}

fn compare(f: Func, a: &V<'_>, b: &V<'_>) -> Exec<std::cmp::Ordering> {
    use std::cmp::Ordering;
    match (a, b) {
        (V::Int(x), V::Int(y)) => Ok(x.cmp(y)),
        (V::Float(x), V::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Equal)),
        (V::Str(x), V::Str(y)) => Ok(x.cmp(y)),
        (V::Bool(_), V::Bool(_)) if f == Func::Eq || f == Func::Ne => Ok(if a == b {
            Ordering::Equal
        } else {
            Ordering::Less
        }),
        _ => fail(format!(
            "error calling {}: incompatible types for comparison ({} and {})",
            f.name(),
            a.kind(),
            b.kind()
        )),
    }
}

fn go_eq(a: &V<'_>, b: &V<'_>) -> Exec<bool> {
    if matches!(a, V::Missing | V::Nil) || matches!(b, V::Missing | V::Nil) {
        return Ok(false);
    }
    Ok(compare(Func::Eq, a, b)? == std::cmp::Ordering::Equal)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64enc(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64dec(input: &str) -> Option<Vec<u8>> {
    let s = input.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Go's `fmt.Sprintf` for the verbs templates use (`%s %v %d %q %x %X %f %e %g %t %c %%`,
/// flags `-+ 0`, width, precision).
fn sprintf(format: &str, args: &[V<'_>]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if "-+ 0#".contains(f) {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let body = match (verb, arg) {
            ('v', a) | ('s', a @ V::Str(_)) => {
                let s = match a {
                    V::Missing | V::Nil => "<nil>".to_owned(),
                    a => a.to_display(),
                };
                match prec {
                    Some(p) if matches!(a, V::Str(_)) => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            ('q', V::Str(s)) => format!("{:?}", s.as_ref()),
            ('d', V::Int(i)) => {
                if flags.contains('+') && *i >= 0 {
                    format!("+{i}")
                } else {
                    i.to_string()
                }
            }
            ('x', V::Int(i)) => format!("{i:x}"),
            ('X', V::Int(i)) => format!("{i:X}"),
            ('x', V::Str(s)) => hex(s.as_bytes()),
            ('X', V::Str(s)) => hex(s.as_bytes()).to_uppercase(),
            ('c', V::Int(i)) => char::from_u32(*i as u32)
                .map(String::from)
                .unwrap_or_default(),
            ('t', V::Bool(b)) => b.to_string(),
            ('f' | 'F', V::Float(f)) => format!("{:.*}", prec.unwrap_or(6), f),
            ('e', V::Float(f)) => {
                let s = format!("{:.*e}", prec.unwrap_or(6), f);
                match s.split_once('e') {
                    Some((m, e)) => {
                        let e: i32 = e.parse().unwrap_or(0);
                        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
                    }
                    None => s,
                }
            }
            ('g', V::Float(f)) => go_float(*f),
            (verb, a) => format!("%!{verb}({}={})", a.kind(), a.to_display()),
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = body.chars().count();
        if len < w {
            let pad = w - len;
            if flags.contains('-') {
                out.push_str(&body);
                out.extend(std::iter::repeat_n(' ', pad));
            } else if flags.contains('0') && !matches!(arg, V::Str(_)) {
                let (sign, digits) = match body.strip_prefix(['-', '+']) {
                    Some(d) => (&body[..1], d),
                    None => ("", body.as_str()),
                };
                out.push_str(sign);
                out.extend(std::iter::repeat_n('0', pad));
                out.push_str(digits);
            } else {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    let extra: Vec<String> = args
        .map(|a| format!("{}={}", a.kind(), a.to_display()))
        .collect();
    if !extra.is_empty() {
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    out
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn sprint(args: &[V<'_>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, V::Str(_)) && !matches!(args[i - 1], V::Str(_)) {
            out.push(' ');
        }
        match a {
            V::Missing | V::Nil => out.push_str("<nil>"),
            a => a.write(&mut out),
        }
    }
    out
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

fn compile_regex(f: Func, pre: Option<&Regex>, expr: &str) -> Exec<Cow<'static, Regex>> {
    match pre {
        Some(r) => Ok(Cow::Owned(r.clone())),
        None => Regex::new(expr)
            .map(Cow::Owned)
            .map_err(|e| ExecError(format!("error calling {}: {e}", f.name()))),
    }
}

fn tk<'d>(a: &mut [V<'d>], i: usize) -> V<'d> {
    std::mem::replace(&mut a[i], V::Nil)
}

fn call<'d>(f: Func, mut a: Vec<V<'d>>, re: Option<&Regex>) -> Exec<V<'d>> {
    use sha2::Digest;
    let s = |v: String| Ok(V::Str(Cow::Owned(v)));
    Ok(match f {
        Func::And | Func::Or => unreachable!("evaluated lazily"),
        Func::Not => V::Bool(!tk(&mut a, 0).truth()),
        Func::Eq => {
            let first = tk(&mut a, 0);
            for other in &a[1..] {
                if go_eq(&first, other)? {
                    return Ok(V::Bool(true));
                }
            }
            V::Bool(false)
        }
        Func::Ne => V::Bool(!go_eq(&a[0], &a[1])?),
        Func::Lt | Func::Le | Func::Gt | Func::Ge => {
            let o = compare(f, &a[0], &a[1])?;
            V::Bool(match f {
                Func::Lt => o.is_lt(),
                Func::Le => o.is_le(),
                Func::Gt => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        Func::Len => match tk(&mut a, 0) {
            V::Str(x) => V::Int(x.len() as i64),
            other => return fail(format!("error calling len: len of type {}", other.kind())),
        },
        Func::Print => return s(sprint(&a)),
        Func::Println => {
            let parts: Vec<String> = a
                .iter()
                .map(|v| match v {
                    V::Missing | V::Nil => "<nil>".to_owned(),
                    v => v.to_display(),
                })
                .collect();
            return s(parts.join(" ") + "\n");
        }
        Func::Printf => {
            let fmt = want_str(f, tk(&mut a, 0))?.into_owned();
            return s(sprintf(&fmt, &a[1..]));
        }
        Func::ToLower | Func::Lower => return s(want_str(f, tk(&mut a, 0))?.to_lowercase()),
        Func::ToUpper | Func::Upper => return s(want_str(f, tk(&mut a, 0))?.to_uppercase()),
        Func::Title => return s(title(&want_str(f, tk(&mut a, 0))?)),
        Func::Replace => {
            let n = want_int(f, &a[3])?;
            let (x, old, new) = (
                want_str(f, tk(&mut a, 0))?,
                want_str(f, tk(&mut a, 1))?,
                want_str(f, tk(&mut a, 2))?,
            );
            if n < 0 {
                return s(x.replace(old.as_ref(), &new));
            }
            return s(x.replacen(old.as_ref(), &new, n as usize));
        }
        Func::Trim | Func::TrimLeft | Func::TrimRight => {
            let (x, cut) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            let m = |c: char| cut.contains(c);
            return s(match f {
                Func::Trim => x.trim_matches(m),
                Func::TrimLeft => x.trim_start_matches(m),
                _ => x.trim_end_matches(m),
            }
            .to_owned());
        }
        Func::TrimPrefix => {
            let (x, p) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            return s(x.strip_prefix(p.as_ref()).unwrap_or(&x).to_owned());
        }
        Func::TrimSuffix => {
            let (x, p) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            return s(x.strip_suffix(p.as_ref()).unwrap_or(&x).to_owned());
        }
        Func::TrimSpace | Func::SprigTrim => {
            return s(want_str(f, tk(&mut a, 0))?.trim().to_owned())
        }
        Func::Hash => {
            let (salt, input) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            let mut h = sha3::Sha3_256::new();
            h.update(salt.as_bytes());
            h.update(input.as_bytes());
            return s(hex(&h.finalize()));
        }
        Func::Sha2Hash => {
            let (salt, input) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            let mut h = sha2::Sha256::new();
            h.update(salt.as_bytes());
            h.update(input.as_bytes());
            return s(hex(&h.finalize()));
        }
        Func::Sha256sum => {
            return s(hex(&sha2::Sha256::digest(
                strval(&tk(&mut a, 0)).as_bytes(),
            )))
        }
        Func::RegexReplaceAll | Func::RegexReplaceAllLiteral => {
            let (expr, x, repl) = (
                want_str(f, tk(&mut a, 0))?,
                want_str(f, tk(&mut a, 1))?,
                want_str(f, tk(&mut a, 2))?,
            );
            let r = compile_regex(f, re, &expr)?;
            return s(if f == Func::RegexReplaceAll {
                r.replace_all(&x, repl.as_ref()).into_owned()
            } else {
                r.replace_all(&x, regex::NoExpand(&repl)).into_owned()
            });
        }
        Func::RegexMatch => {
            let (expr, x) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            V::Bool(compile_regex(f, re, &expr)?.is_match(&x))
        }
        Func::RegexFind => {
            let (expr, x) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            let r = compile_regex(f, re, &expr)?;
            return s(r
                .find(&x)
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default());
        }
        Func::RegexQuoteMeta => return s(regex::escape(&want_str(f, tk(&mut a, 0))?)),
        Func::TrimAll => {
            let (cut, x) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            return s(x.trim_matches(|c| cut.contains(c)).to_owned());
        }
        Func::SprigTrimPrefix => {
            let (p, x) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            return s(x.strip_prefix(p.as_ref()).unwrap_or(&x).to_owned());
        }
        Func::SprigTrimSuffix => {
            let (p, x) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            return s(x.strip_suffix(p.as_ref()).unwrap_or(&x).to_owned());
        }
        Func::SprigReplace => {
            let (old, new, x) = (
                want_str(f, tk(&mut a, 0))?,
                want_str(f, tk(&mut a, 1))?,
                want_str(f, tk(&mut a, 2))?,
            );
            return s(x.replace(old.as_ref(), &new));
        }
        Func::Contains => {
            let (sub, x) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            V::Bool(x.contains(sub.as_ref()))
        }
        Func::HasPrefix => {
            let (p, x) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            V::Bool(x.starts_with(p.as_ref()))
        }
        Func::HasSuffix => {
            let (p, x) = (want_str(f, tk(&mut a, 0))?, want_str(f, tk(&mut a, 1))?);
            V::Bool(x.ends_with(p.as_ref()))
        }
        Func::Repeat => {
            let n = want_int(f, &a[0])?;
            let x = want_str(f, tk(&mut a, 1))?;
            if !(0..=1_000_000).contains(&n) {
                return fail("error calling repeat: count out of range");
            }
            return s(x.repeat(n as usize));
        }
        Func::Substr => {
            let (start, end) = (want_int(f, &a[0])?, want_int(f, &a[1])?);
            let x = want_str(f, tk(&mut a, 2))?;
            let len = x.len() as i64;
            let (st, en) = if start < 0 {
                (0, end.min(len))
            } else if end < 0 || end > len {
                (start.min(len), len)
            } else {
                (start.min(end), end)
            };
            return s(x.get(st as usize..en as usize).unwrap_or("").to_owned());
        }
        Func::Trunc => {
            let n = want_int(f, &a[0])?;
            let x = want_str(f, tk(&mut a, 1))?;
            let len = x.len() as i64;
            let out = if n < 0 {
                x.get((len + n).max(0) as usize..).unwrap_or("")
            } else {
                x.get(..n.min(len) as usize).unwrap_or(&x)
            };
            return s(out.to_owned());
        }
        Func::Nospace => {
            return s(want_str(f, tk(&mut a, 0))?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect())
        }
        Func::Abbrev => {
            let w = want_int(f, &a[0])?;
            let x = want_str(f, tk(&mut a, 1))?;
            if w < 4 || x.chars().count() as i64 <= w {
                return s(x.into_owned());
            }
            let keep: String = x.chars().take((w - 3) as usize).collect();
            return s(keep + "...");
        }
        Func::Quote | Func::Squote => {
            let q = f == Func::Quote;
            let parts: Vec<String> = a
                .iter()
                .filter(|v| !matches!(v, V::Missing | V::Nil))
                .map(|v| {
                    if q {
                        format!("{:?}", strval(v))
                    } else {
                        format!("'{}'", strval(v))
                    }
                })
                .collect();
            return s(parts.join(" "));
        }
        Func::Cat => {
            let parts: Vec<String> = a
                .iter()
                .filter(|v| !matches!(v, V::Missing | V::Nil))
                .map(strval)
                .collect();
            return s(parts.join(" "));
        }
        Func::Default => {
            let d = tk(&mut a, 0);
            match a.get_mut(1) {
                Some(g) if g.truth() => std::mem::replace(g, V::Nil),
                _ => d,
            }
        }
        Func::Empty => V::Bool(!tk(&mut a, 0).truth()),
        Func::Coalesce => match a.iter_mut().find(|v| v.truth()) {
            Some(v) => std::mem::replace(v, V::Nil),
            None => V::Nil,
        },
        Func::Ternary => {
            let cond = tk(&mut a, 2);
            if cond.truth() {
                tk(&mut a, 0)
            } else {
                tk(&mut a, 1)
            }
        }
        Func::ToString => return s(strval(&tk(&mut a, 0))),
        Func::Atoi => V::Int(want_str(f, tk(&mut a, 0))?.trim().parse().unwrap_or(0)),
        Func::Int | Func::Int64 => V::Int(to_i64(&a[0])),
        Func::Float64 => V::Float(to_f64(&a[0])),
        Func::Add => V::Int(a.iter().map(to_i64).fold(0i64, i64::wrapping_add)),
        Func::Sub => V::Int(to_i64(&a[0]).wrapping_sub(to_i64(&a[1]))),
        Func::Mul => V::Int(a.iter().map(to_i64).fold(1i64, i64::wrapping_mul)),
        Func::Div | Func::Mod => {
            let (x, y) = (to_i64(&a[0]), to_i64(&a[1]));
            if y == 0 {
                return fail(format!(
                    "error calling {}: integer divide by zero",
                    f.name()
                ));
            }
            V::Int(if f == Func::Div {
                x.wrapping_div(y)
            } else {
                x.wrapping_rem(y)
            })
        }
        Func::Max => V::Int(a.iter().map(to_i64).max().unwrap_or(0)),
        Func::Min => V::Int(a.iter().map(to_i64).min().unwrap_or(0)),
        Func::B64enc => return s(b64enc(strval(&tk(&mut a, 0)).as_bytes())),
        Func::B64dec => {
            let x = want_str(f, tk(&mut a, 0))?;
            return s(match b64dec(&x) {
                Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                None => "illegal base64 data".to_owned(),
            });
        }
        Func::Indent | Func::Nindent => {
            let n = want_int(f, &a[0])?.clamp(0, 1000) as usize;
            let x = want_str(f, tk(&mut a, 1))?;
            let pad = " ".repeat(n);
            let body = format!("{pad}{}", x.replace('\n', &format!("\n{pad}")));
            return s(if f == Func::Nindent {
                format!("\n{body}")
            } else {
                body
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Map(HashMap<&'static str, &'static str>);

    impl Data for Map {
        fn field(&self, name: &str) -> Option<Cow<'_, str>> {
            self.0.get(name).map(|v| Cow::Borrowed(*v))
        }
    }

    fn data() -> Map {
        Map(HashMap::from([
            ("Value", "LoKi Rocks"),
            ("Entry", "the line"),
            ("level", "warn"),
            ("app", "loki"),
            ("empty", ""),
            ("n", "42"),
            ("path", "/api/v1/users/123"),
        ]))
    }

    fn run(src: &str) -> Result<String, String> {
        let t = Template::new(src)?;
        let mut out = String::new();
        t.execute(&data(), &mut out).map_err(|e| e.0)?;
        Ok(out)
    }

    #[test]
    fn function_table() {
        let cases: &[(&str, &str)] = &[
            ("{{ .Value }}_some_suffix", "LoKi Rocks_some_suffix"),
            ("{{ ToLower .Value }}", "loki rocks"),
            ("{{ .Value | ToUpper }}", "LOKI ROCKS"),
            (
                "{{ .level }} for app {{ ToUpper .app }}",
                "warn for app LOKI",
            ),
            ("{{ Replace .Value \"o\" \"0\" 1 }}", "L0Ki Rocks"),
            ("{{ Replace .Value \"o\" \"0\" -1 }}", "L0Ki R0cks"),
            ("{{ Trim \"--x--\" \"-\" }}", "x"),
            ("{{ TrimLeft \"--x--\" \"-\" }}", "x--"),
            ("{{ TrimRight \"--x--\" \"-\" }}", "--x"),
            ("{{ TrimPrefix .path \"/api\" }}", "/v1/users/123"),
            ("{{ TrimSuffix .path \"/123\" }}", "/api/v1/users"),
            ("{{ TrimSpace \"  x  \" }}", "x"),
            (
                "{{ Hash \"salt\" \"value\" }}",
                "519e18e6887a4252ee07882c73b3918e86bb502cd040e122579f257ca1748196",
            ),
            (
                "{{ Sha2Hash \"salt\" \"value\" }}",
                "d430a1da30afe1a9d07b3b36042151ebaf53c4882af1609733c04930de318e33",
            ),
            (
                "{{ regexReplaceAll \"(\\\\d+)\" .path \"<$1>\" }}",
                "/api/v<1>/users/<123>",
            ),
            (
                "{{ regexReplaceAllLiteral \"\\\\d+\" .path \"$1\" }}",
                "/api/v$1/users/$1",
            ),
            ("{{ regexMatch \"^/api\" .path }}", "true"),
            ("{{ regexFind \"\\\\d+\" .path }}", "1"),
            ("{{ lower .Value }}", "loki rocks"),
            ("{{ upper .app }}", "LOKI"),
            ("{{ title \"hello big world\" }}", "Hello Big World"),
            ("{{ trim \"  x \" }}", "x"),
            ("{{ trimAll \"$\" \"$5.00$\" }}", "5.00"),
            ("{{ trimPrefix \"/api\" .path }}", "/v1/users/123"),
            ("{{ trimSuffix \"123\" .path }}", "/api/v1/users/"),
            ("{{ replace \" \" \"_\" .Value }}", "LoKi_Rocks"),
            (
                "{{ .Value | replace \" \" \"_\" | trunc 5 | upper }}",
                "LOKI_",
            ),
            ("{{ contains \"Rock\" .Value }}", "true"),
            ("{{ hasPrefix \"Lo\" .Value }}", "true"),
            ("{{ hasSuffix \"x\" .Value }}", "false"),
            ("{{ repeat 3 \"ab\" }}", "ababab"),
            ("{{ substr 0 4 .Value }}", "LoKi"),
            ("{{ trunc -5 .Value }}", "Rocks"),
            ("{{ nospace .Value }}", "LoKiRocks"),
            ("{{ abbrev 7 .Value }}", "LoKi..."),
            ("{{ quote .app }}", "\"loki\""),
            ("{{ squote .app }}", "'loki'"),
            ("{{ cat .app .level }}", "loki warn"),
            ("{{ default \"none\" .missing }}", "none"),
            ("{{ default \"none\" .empty }}", "none"),
            ("{{ .app | default \"none\" }}", "loki"),
            ("{{ empty .empty }}", "true"),
            ("{{ coalesce .missing .empty .app }}", "loki"),
            ("{{ ternary \"yes\" \"no\" (eq .level \"warn\") }}", "yes"),
            ("{{ toString 5 }}", "5"),
            ("{{ add (atoi .n) 8 }}", "50"),
            (
                "{{ sub 10 3 }}|{{ mul 2 3 4 }}|{{ div 7 2 }}|{{ mod 7 2 }}",
                "7|24|3|1",
            ),
            ("{{ max 1 9 3 }}{{ min 4 2 }}", "92"),
            ("{{ int \"12\" }}{{ float64 \"1.5\" }}", "121.5"),
            (
                "{{ b64enc \"hello\" }}|{{ b64dec \"aGVsbG8=\" }}",
                "aGVsbG8=|hello",
            ),
            (
                "{{ sha256sum \"abc\" }}",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            ("{{ indent 2 \"a\\nb\" }}", "  a\n  b"),
            ("{{ len .app }}", "4"),
            (
                "{{ printf \"%s=%d %5.2f|%-4s|%q\" .app 7 3.14159 \"x\" \"y\" }}",
                "loki=7  3.14|x   |\"y\"",
            ),
            ("{{ print \"a\" 1 2 \"b\" }}", "a1 2b"),
            ("{{ println .app 1 }}", "loki 1\n"),
            ("{{ regexQuoteMeta \"a.b\" }}", "a\\.b"),
        ];
        for (src, want) in cases {
            assert_eq!(run(src).as_deref(), Ok(*want), "{src}");
        }
    }

    #[test]
    fn control_flow_variables_and_trimming() {
        let cases: &[(&str, &str)] = &[
            ("{{ if eq .level \"warn\" }}W{{ else }}other{{ end }}", "W"),
            (
                "{{ if eq .level \"info\" }}I{{ else if eq .level \"warn\" }}W{{ else }}?{{ end }}",
                "W",
            ),
            ("{{ if ne .level \"warn\" }}x{{ end }}", ""),
            ("{{ if .missing }}x{{ else }}no{{ end }}", "no"),
            ("{{ if and .app .level }}both{{ end }}", "both"),
            ("{{ or .empty .missing \"fallback\" }}", "fallback"),
            ("{{ and .app .empty }}|", "|"),
            ("{{ not .empty }}", "true"),
            ("{{ if eq .level \"a\" \"b\" \"warn\" }}any{{ end }}", "any"),
            ("{{ if lt .app \"m\" }}lt{{ end }}", "lt"),
            ("{{ with .app }}[{{ . }}]{{ else }}none{{ end }}", "[loki]"),
            (
                "{{ with .missing }}[{{ . }}]{{ else }}none{{ end }}",
                "none",
            ),
            (
                "{{ $x := ToUpper .app }}{{ $x }}-{{ $x = \"y\" }}{{ $x }}",
                "LOKI-y",
            ),
            ("{{ $.app }}", "loki"),
            ("a  {{- .app -}}  b", "alokib"),
            ("{{/* a comment */}}x{{- /* trimmed */ -}} y", "xy"),
            ("{{ .missing }}", "<no value>"),
            ("{{ (ToUpper .app) }}", "LOKI"),
            ("{{ \"}}\" }}", "}}"),
            ("plain text", "plain text"),
            ("{{ 3 }} {{ 1.5 }} {{ true }} {{ 0x10 }}", "3 1.5 true 16"),
            ("{{ if eq .missing \"x\" }}y{{ else }}n{{ end }}", "n"),
        ];
        for (src, want) in cases {
            assert_eq!(run(src).as_deref(), Ok(*want), "{src}");
        }
    }

    #[test]
    fn execution_errors_fail_the_template() {
        for src in [
            "{{ ToUpper .missing }}",
            "{{ eq .n 42 }}",
            "{{ lt .missing 1 }}",
            "{{ .app.sub }}",
            "{{ Replace .app \"a\" \"b\" \"1\" }}",
            "{{ div 1 0 }}",
        ] {
            assert!(run(src).is_err(), "{src}");
        }
        // A dynamic regex that compiles works.
        assert_eq!(
            run("{{ regexReplaceAll .level .level \"x\" }}").as_deref(),
            Ok("x")
        );
    }

    #[test]
    fn compile_errors_are_refused() {
        for (src, why) in [
            ("{{ Foo .Value }}", "function \"Foo\" not defined"),
            ("{{ range .x }}{{ end }}", "not supported"),
            ("{{ define \"x\" }}{{ end }}", "not supported"),
            ("{{ template \"x\" }}", "not supported"),
            ("{{ if .a }}x", "missing {{end}}"),
            ("x{{ end }}", "unexpected {{end}}"),
            ("{{ .a", "unclosed action"),
            (
                "{{ ToUpper }}",
                "wrong number of args for ToUpper: want 1 got 0",
            ),
            (
                "{{ Replace .Value \"a\" \"b\" }}",
                "wrong number of args for Replace",
            ),
            ("{{ .Value | ToUpper .x }}", "wrong number of args"),
            (
                "{{ regexReplaceAll \"(\" .Value \"x\" }}",
                "invalid regular expression",
            ),
            ("{{ .a .b }}", "can't give argument to non-function"),
            ("{{ .a | .b }}", "non-function in a pipeline"),
            ("{{ \"unterminated }}", "unclosed action"),
            ("{{ }}", "missing value"),
            ("{{ .a || .b }}", "`||`"),
        ] {
            let err = Template::new(src).expect_err(src);
            assert!(err.contains(why), "{src}: {err}");
        }
    }

    #[test]
    fn go_float_formatting() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
    }
}
