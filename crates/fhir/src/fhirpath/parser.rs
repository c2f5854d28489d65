//! Lexer and precedence-climbing parser for FHIRPath 2.0 (N1) plus the few 3.0
//! additions in common use.

use std::sync::Arc;

use super::ast::{BinOp, Expr, Func, TypeSpec};
use super::decimal::Decimal;
use super::quantity::{Quantity, calendar_unit};
use super::temporal::{DateTime, Time};

/// Why an expression could not be compiled. Positions are byte offsets into the
/// source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{message} at position {position}")]
    Syntax { position: usize, message: String },
    #[error("invalid {kind} literal '{text}' at position {position}")]
    InvalidLiteral {
        position: usize,
        kind: &'static str,
        text: String,
    },
    #[error("unknown function '{name}' at position {position}")]
    UnknownFunction { position: usize, name: String },
    #[error("function '{name}' at position {position} takes {expected} argument(s), found {found}")]
    Arity {
        position: usize,
        name: &'static str,
        expected: String,
        found: usize,
    },
    #[error("expected a type name at position {position}")]
    TypeExpected { position: usize },
}

impl ParseError {
    /// Byte offset of the problem in the source.
    pub fn position(&self) -> usize {
        match self {
            ParseError::Syntax { position, .. }
            | ParseError::InvalidLiteral { position, .. }
            | ParseError::UnknownFunction { position, .. }
            | ParseError::Arity { position, .. }
            | ParseError::TypeExpected { position } => *position,
        }
    }
}

fn syntax(position: usize, message: impl Into<String>) -> ParseError {
    ParseError::Syntax {
        position,
        message: message.into(),
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    /// A `backquoted` identifier: never a keyword.
    Delimited(String),
    Str(String),
    Number(String),
    Long(String),
    Date(String),
    DateTime(String),
    Time(String),
    Var(String),
    Dollar(String),
    Op(&'static str),
    Eof,
}

struct Token {
    tok: Tok,
    pos: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Delimited(s) => format!("`{s}`"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Number(s) | Tok::Long(s) => format!("number {s}"),
        Tok::Date(s) | Tok::DateTime(s) | Tok::Time(s) => format!("@{s}"),
        Tok::Var(s) => format!("%{s}"),
        Tok::Dollar(s) => format!("${s}"),
        Tok::Op(s) => format!("'{s}'"),
        Tok::Eof => "end of expression".into(),
    }
}

struct Lexer<'s> {
    src: &'s str,
    b: &'s [u8],
    i: usize,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'s> Lexer<'s> {
    fn new(src: &'s str) -> Self {
        Lexer {
            src,
            b: src.as_bytes(),
            i: 0,
        }
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            match (self.peek_at(0), self.peek_at(1)) {
                (Some(c), _) if c.is_ascii_whitespace() => self.i += 1,
                (Some(b'/'), Some(b'/')) => {
                    while let Some(c) = self.peek_at(0) {
                        if c == b'\n' {
                            break;
                        }
                        self.i += 1;
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    let start = self.i;
                    self.i += 2;
                    loop {
                        match (self.peek_at(0), self.peek_at(1)) {
                            (Some(b'*'), Some(b'/')) => {
                                self.i += 2;
                                break;
                            }
                            (Some(_), _) => self.i += 1,
                            (None, _) => return Err(syntax(start, "unterminated comment")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Reads a quoted string or delimited identifier, handling escapes.
    fn quoted(&mut self, quote: u8) -> Result<String, ParseError> {
        let start = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek_at(0) else {
                return Err(syntax(start, "unterminated string"));
            };
            if c == quote {
                self.i += 1;
                return Ok(out);
            }
            if c == b'\\' {
                let e = self
                    .peek_at(1)
                    .ok_or_else(|| syntax(start, "unterminated string"))?;
                self.i += 2;
                match e {
                    b'\'' => out.push('\''),
                    b'"' => out.push('"'),
                    b'`' => out.push('`'),
                    b'\\' => out.push('\\'),
                    b'/' => out.push('/'),
                    b'f' => out.push('\u{c}'),
                    b'n' => out.push('\n'),
                    b'r' => out.push('\r'),
                    b't' => out.push('\t'),
                    b'u' => {
                        let hex = self
                            .src
                            .get(self.i..self.i + 4)
                            .ok_or_else(|| syntax(self.i, "invalid unicode escape"))?;
                        let cp = u32::from_str_radix(hex, 16)
                            .map_err(|_| syntax(self.i, "invalid unicode escape"))?;
                        self.i += 4;
                        out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                    }
                    _ => return Err(syntax(self.i - 2, "invalid escape sequence")),
                }
                continue;
            }
            // Copy one UTF-8 character.
            let ch = self.src[self.i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            self.i += ch.len_utf8();
        }
    }

    fn digits(&mut self) -> usize {
        let s = self.i;
        while self.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - s
    }

    /// `hh(:mm(:ss(.fff)?)?)?`
    fn time_part(&mut self) {
        self.digits();
        while self.peek_at(0) == Some(b':') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
            self.digits();
        }
        if self.peek_at(0) == Some(b'.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
            self.digits();
        }
    }

    fn date_literal(&mut self) -> Result<Tok, ParseError> {
        let start = self.i; // after '@'
        if self.peek_at(0) == Some(b'T') {
            self.i += 1;
            self.time_part();
            let text = &self.src[start + 1..self.i];
            return Ok(Tok::Time(text.to_string()));
        }
        self.digits();
        for _ in 0..2 {
            if self.peek_at(0) == Some(b'-') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
            {
                self.i += 1;
                self.digits();
            }
        }
        let mut date_time = false;
        if self.peek_at(0) == Some(b'T') {
            date_time = true;
            self.i += 1;
            if self.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
                self.time_part();
            }
            match self.peek_at(0) {
                Some(b'Z') => self.i += 1,
                Some(b'+' | b'-')
                    if self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
                        && self.peek_at(3) == Some(b':') =>
                {
                    // `+hh:mm`: the sign, then at most five ASCII digits or colons, so
                    // that the literal never ends inside a multi-byte character.
                    self.i += 1;
                    for _ in 0..5 {
                        if !self
                            .peek_at(0)
                            .is_some_and(|c| c.is_ascii_digit() || c == b':')
                        {
                            break;
                        }
                        self.i += 1;
                    }
                }
                _ => {}
            }
        }
        let text = self.src[start..self.i].to_string();
        Ok(if date_time {
            Tok::DateTime(text)
        } else {
            Tok::Date(text)
        })
    }

    fn next(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia()?;
        let pos = self.i;
        let Some(c) = self.peek_at(0) else {
            return Ok(Token { tok: Tok::Eof, pos });
        };
        let tok = match c {
            b'\'' => Tok::Str(self.quoted(b'\'')?),
            b'`' => Tok::Delimited(self.quoted(b'`')?),
            b'0'..=b'9' => {
                self.digits();
                if self.peek_at(0) == Some(b'.')
                    && self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
                {
                    self.i += 1;
                    self.digits();
                }
                let text = self.src[pos..self.i].to_string();
                if self.peek_at(0) == Some(b'L') && !self.peek_at(1).is_some_and(is_ident_char) {
                    self.i += 1;
                    Tok::Long(text)
                } else {
                    Tok::Number(text)
                }
            }
            c if is_ident_start(c) => {
                while self.peek_at(0).is_some_and(is_ident_char) {
                    self.i += 1;
                }
                Tok::Ident(self.src[pos..self.i].to_string())
            }
            b'@' => {
                self.i += 1;
                self.date_literal()?
            }
            b'%' => {
                self.i += 1;
                match self.peek_at(0) {
                    Some(b'`') => Tok::Var(self.quoted(b'`')?),
                    Some(b'\'') => Tok::Var(self.quoted(b'\'')?),
                    Some(c) if is_ident_start(c) => {
                        let s = self.i;
                        while self.peek_at(0).is_some_and(is_ident_char) {
                            self.i += 1;
                        }
                        Tok::Var(self.src[s..self.i].to_string())
                    }
                    _ => return Err(syntax(pos, "expected a variable name after '%'")),
                }
            }
            b'$' => {
                self.i += 1;
                let s = self.i;
                while self.peek_at(0).is_some_and(is_ident_char) {
                    self.i += 1;
                }
                Tok::Dollar(self.src[s..self.i].to_string())
            }
            _ => {
                let two = self.src.get(self.i..self.i + 2).unwrap_or("");
                let op: &'static str = match two {
                    "<=" => "<=",
                    ">=" => ">=",
                    "!=" => "!=",
                    "!~" => "!~",
                    _ => match c {
                        b'.' => ".",
                        b'(' => "(",
                        b')' => ")",
                        b'[' => "[",
                        b']' => "]",
                        b'{' => "{",
                        b'}' => "}",
                        b',' => ",",
                        b'+' => "+",
                        b'-' => "-",
                        b'*' => "*",
                        b'/' => "/",
                        b'&' => "&",
                        b'|' => "|",
                        b'=' => "=",
                        b'~' => "~",
                        b'<' => "<",
                        b'>' => ">",
                        _ => {
                            let ch = self.src[self.i..].chars().next().unwrap_or('?');
                            return Err(syntax(pos, format!("unexpected character '{ch}'")));
                        }
                    },
                };
                self.i += op.len();
                Tok::Op(op)
            }
        };
        Ok(Token { tok, pos })
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
    /// Binary operators so far: a long chain makes a deep (left-leaning) tree.
    operators: usize,
}

/// Deeper nesting than this is rejected (keeps recursion bounded).
const MAX_DEPTH: usize = 200;

fn binop(t: &Tok) -> Option<(BinOp, u8)> {
    Some(match t {
        Tok::Op(o) => match *o {
            "*" => (BinOp::Mul, 10),
            "/" => (BinOp::Div, 10),
            "+" => (BinOp::Add, 9),
            "-" => (BinOp::Sub, 9),
            "&" => (BinOp::Concat, 9),
            "|" => (BinOp::Union, 7),
            "<" => (BinOp::Lt, 6),
            "<=" => (BinOp::Le, 6),
            ">" => (BinOp::Gt, 6),
            ">=" => (BinOp::Ge, 6),
            "=" => (BinOp::Eq, 5),
            "!=" => (BinOp::Ne, 5),
            "~" => (BinOp::Equiv, 5),
            "!~" => (BinOp::NotEquiv, 5),
            _ => return None,
        },
        Tok::Ident(w) => match w.as_str() {
            "div" => (BinOp::IntDiv, 10),
            "mod" => (BinOp::Mod, 10),
            "in" => (BinOp::In, 4),
            "contains" => (BinOp::Contains, 4),
            "and" => (BinOp::And, 3),
            "or" => (BinOp::Or, 2),
            "xor" => (BinOp::Xor, 2),
            "implies" => (BinOp::Implies, 1),
            _ => return None,
        },
        _ => return None,
    })
}

const TYPE_OP_PREC: u8 = 8;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn pos(&self) -> usize {
        self.toks[self.i].pos
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.i].tok.clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ParseError> {
        if self.is_op(op) {
            self.bump();
            Ok(())
        } else {
            Err(syntax(
                self.pos(),
                format!("expected '{op}', found {}", describe(self.peek())),
            ))
        }
    }

    fn expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(syntax(self.pos(), "expression nested too deeply"));
        }
        let r = self.expr_inner(min_prec);
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let t = self.peek();
            if let Tok::Ident(w) = t
                && (w == "is" || w == "as")
            {
                if TYPE_OP_PREC < min_prec {
                    break;
                }
                let is = w == "is";
                self.bump();
                let spec = self.type_spec()?;
                lhs = if is {
                    Expr::Is(Box::new(lhs), spec)
                } else {
                    Expr::As(Box::new(lhs), spec)
                };
                continue;
            }
            let Some((op, prec)) = binop(t) else { break };
            if prec < min_prec {
                break;
            }
            self.operators += 1;
            if self.operators > MAX_DEPTH * 5 {
                return Err(syntax(self.pos(), "too many operators in one expression"));
            }
            self.bump();
            let rhs = self.expr(prec + 1)?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn type_spec(&mut self) -> Result<TypeSpec, ParseError> {
        let pos = self.pos();
        let first = match self.bump() {
            Tok::Ident(s) | Tok::Delimited(s) => s,
            _ => return Err(ParseError::TypeExpected { position: pos }),
        };
        if self.is_op(".") {
            self.bump();
            let pos = self.pos();
            let name = match self.bump() {
                Tok::Ident(s) | Tok::Delimited(s) => s,
                _ => return Err(ParseError::TypeExpected { position: pos }),
            };
            return Ok(TypeSpec {
                namespace: Some(first.into()),
                name: name.into(),
            });
        }
        Ok(TypeSpec {
            namespace: None,
            name: first.into(),
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.is_op("-") || self.is_op("+") {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(syntax(self.pos(), "expression nested too deeply"));
            }
            let r = self.unary_inner();
            self.depth -= 1;
            return r;
        }
        self.postfix()
    }

    fn unary_inner(&mut self) -> Result<Expr, ParseError> {
        if self.is_op("-") {
            self.bump();
            let e = self.unary()?;
            return Ok(match e {
                Expr::Integer(i) => Expr::Integer(-i),
                Expr::Decimal(d) => Expr::Decimal(d.neg()),
                Expr::Quantity(mut q) => {
                    q.value = q.value.neg();
                    Expr::Quantity(q)
                }
                e => Expr::Neg(Box::new(e)),
            });
        }
        if self.is_op("+") {
            self.bump();
            return self.unary();
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.term()?;
        loop {
            if self.is_op(".") {
                self.bump();
                let pos = self.pos();
                let name = match self.bump() {
                    Tok::Ident(s) | Tok::Delimited(s) => s,
                    t => {
                        return Err(syntax(
                            pos,
                            format!("expected a name after '.', found {}", describe(&t)),
                        ));
                    }
                };
                if self.is_op("(") {
                    e = self.call(Some(e), &name, pos)?;
                } else {
                    e = Expr::Member(Box::new(e), name.into());
                }
            } else if self.is_op("[") {
                self.bump();
                let idx = self.expr(0)?;
                self.expect_op("]")?;
                e = Expr::Indexer(Box::new(e), Box::new(idx));
            } else {
                return Ok(e);
            }
        }
    }

    fn call(&mut self, target: Option<Expr>, name: &str, pos: usize) -> Result<Expr, ParseError> {
        self.expect_op("(")?;
        let mut args = Vec::new();
        if !self.is_op(")") {
            loop {
                args.push(self.expr(0)?);
                if self.is_op(",") {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        self.expect_op(")")?;
        let func = Func::lookup(name).ok_or_else(|| ParseError::UnknownFunction {
            position: pos,
            name: name.to_string(),
        })?;
        let (min, max) = func.arity();
        if args.len() < min || args.len() > max {
            return Err(ParseError::Arity {
                position: pos,
                name: func.name(),
                expected: if min == max {
                    min.to_string()
                } else {
                    format!("{min} to {max}")
                },
                found: args.len(),
            });
        }
        if func.type_arg() {
            let spec = match &args[0] {
                Expr::Ident(n) => TypeSpec {
                    namespace: None,
                    name: n.clone(),
                },
                Expr::Member(ns, n) => match &**ns {
                    Expr::Ident(ns) => TypeSpec {
                        namespace: Some(ns.clone()),
                        name: n.clone(),
                    },
                    _ => return Err(ParseError::TypeExpected { position: pos }),
                },
                _ => return Err(ParseError::TypeExpected { position: pos }),
            };
            args[0] = Expr::Type(spec);
        }
        Ok(Expr::Call {
            target: target.map(Box::new),
            func,
            args,
        })
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let pos = self.pos();
        let t = self.bump();
        Ok(match t {
            Tok::Ident(w) => match w.as_str() {
                "true" => Expr::Boolean(true),
                "false" => Expr::Boolean(false),
                _ if self.is_op("(") => self.call(None, &w, pos)?,
                _ => Expr::Ident(w.into()),
            },
            Tok::Delimited(w) => Expr::Ident(w.into()),
            Tok::Str(s) => Expr::String(Arc::from(s)),
            Tok::Long(n) => Expr::Integer(n.parse().map_err(|_| ParseError::InvalidLiteral {
                position: pos,
                kind: "integer",
                text: n.clone(),
            })?),
            Tok::Number(n) => {
                // A quantity?
                let unit = match self.peek() {
                    Tok::Str(u) => Some(u.clone()),
                    Tok::Ident(u) if calendar_unit(u).is_some() => Some(u.clone()),
                    _ => None,
                };
                let invalid = || ParseError::InvalidLiteral {
                    position: pos,
                    kind: "number",
                    text: n.clone(),
                };
                if let Some(unit) = unit {
                    self.bump();
                    let value = Decimal::parse(&n).ok_or_else(invalid)?;
                    Expr::Quantity(Quantity::new(value, &unit))
                } else if n.contains('.') {
                    Expr::Decimal(Decimal::parse(&n).ok_or_else(invalid)?)
                } else {
                    match n.parse::<i64>() {
                        Ok(i) => Expr::Integer(i),
                        Err(_) => Expr::Decimal(Decimal::parse(&n).ok_or_else(invalid)?),
                    }
                }
            }
            Tok::Date(s) => {
                Expr::Date(DateTime::parse_date(&s).ok_or(ParseError::InvalidLiteral {
                    position: pos,
                    kind: "date",
                    text: s,
                })?)
            }
            Tok::DateTime(s) => match DateTime::parse_datetime(&s) {
                Some(d) => Expr::DateTime(d),
                None => {
                    return Err(ParseError::InvalidLiteral {
                        position: pos,
                        kind: "dateTime",
                        text: s,
                    });
                }
            },
            Tok::Time(s) => match Time::parse(&s) {
                Some(t) => Expr::Time(t),
                None => {
                    return Err(ParseError::InvalidLiteral {
                        position: pos,
                        kind: "time",
                        text: s,
                    });
                }
            },
            Tok::Var(v) => Expr::Var(v.into()),
            Tok::Dollar(d) => match d.as_str() {
                "this" => Expr::This,
                "index" => Expr::Index,
                "total" => Expr::Total,
                _ => return Err(syntax(pos, format!("unknown special variable '${d}'"))),
            },
            Tok::Op("(") => {
                let e = self.expr(0)?;
                self.expect_op(")")?;
                e
            }
            Tok::Op("{") => {
                self.expect_op("}")?;
                Expr::Empty
            }
            t => {
                return Err(syntax(
                    pos,
                    format!("expected an expression, found {}", describe(&t)),
                ));
            }
        })
    }
}

pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
    let mut lx = Lexer::new(src);
    let mut toks = Vec::new();
    loop {
        let t = lx.next()?;
        let eof = t.tok == Tok::Eof;
        toks.push(t);
        if eof {
            break;
        }
    }
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
        operators: 0,
    };
    let e = p.expr(0)?;
    if *p.peek() != Tok::Eof {
        return Err(syntax(
            p.pos(),
            format!("unexpected {}", describe(p.peek())),
        ));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_zone_offset_cut_short_by_a_multi_byte_character_is_an_error() {
        // The offset once took six bytes blindly and ended inside the `é`.
        for src in [
            "@2024-05-01T10:00:00+02:0\u{e9}",
            "@2024-05-01T10:00+0\u{20ac}",
        ] {
            assert!(parse(src).is_err(), "{src}");
        }
        assert!(parse("@2024-05-01T10:00:00+02:0x").is_err());
        assert!(parse("@2024-05-01T10:00:00+02:00").is_ok());
        assert!(parse("@2024-05-01T10:00:00-05:30 > @2024").is_ok());
    }
}
