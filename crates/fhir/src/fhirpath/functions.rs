//! The function library.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::ast::{Expr, Func};
use super::decimal::Decimal;
use super::eval::{Ctx, EvalError, Nodes, R, Scope, invalid, to_dec};
use super::model::Kind;
use super::node::resource_node;
use super::node::{Element, Node, Str};
use super::quantity::{Quantity, calendar_unit, is_known_unit};
use super::temporal::{DateTime, Precision, Time};

fn bad(function: Func, message: impl Into<String>) -> EvalError {
    EvalError::InvalidArgument {
        function: function.name(),
        message: message.into(),
    }
}

fn one<'a>(n: Option<Node<'a>>) -> Nodes<'a> {
    n.into_iter().collect()
}

fn boolean<'a>(b: bool) -> Nodes<'a> {
    vec![Node::Boolean(b)]
}

fn string<'a>(s: String) -> Node<'a> {
    Node::String(s.into())
}

/// Compiled regular expressions, shared by all evaluations.
fn regex(pattern: &str, f: Func) -> R<regex::Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, regex::Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let full = if f == Func::MatchesFull {
        format!("(?s)^(?:{pattern})$")
    } else {
        format!("(?s){pattern}")
    };
    if let Ok(c) = cache.lock()
        && let Some(r) = c.get(&full)
    {
        return Ok(r.clone());
    }
    let r = regex::Regex::new(&full).map_err(|e| bad(f, e.to_string()))?;
    if let Ok(mut c) = cache.lock() {
        if c.len() > 512 {
            c.clear();
        }
        c.insert(full, r.clone());
    }
    Ok(r)
}

impl<'a> Ctx<'a, '_> {
    fn arg(&self, args: &[Expr], i: usize, s: Scope<'a, '_>) -> R<Nodes<'a>> {
        match args.get(i) {
            Some(e) => self.eval(e, s),
            None => Ok(Vec::new()),
        }
    }

    /// A singleton argument as a System value.
    fn arg_value(&self, args: &[Expr], i: usize, s: Scope<'a, '_>, f: Func) -> R<Option<Node<'a>>> {
        let v = self.arg(args, i, s)?;
        Ok(self.singleton(&v, f.name())?.and_then(|n| self.sys(n)))
    }

    fn arg_str(&self, args: &[Expr], i: usize, s: Scope<'a, '_>, f: Func) -> R<Option<Str<'a>>> {
        match self.arg_value(args, i, s, f)? {
            None => Ok(None),
            Some(Node::String(v)) => Ok(Some(v)),
            Some(_) => Err(bad(f, "argument must be a string")),
        }
    }

    fn arg_int(&self, args: &[Expr], i: usize, s: Scope<'a, '_>, f: Func) -> R<Option<i64>> {
        match self.arg_value(args, i, s, f)? {
            None => Ok(None),
            Some(Node::Integer(v)) => Ok(Some(v)),
            Some(_) => Err(bad(f, "argument must be an integer")),
        }
    }

    fn input_value(&self, focus: &[Node<'a>], f: Func) -> R<Option<Node<'a>>> {
        match self.singleton(focus, f.name())? {
            None => Ok(None),
            Some(n) => Ok(self.sys(n)),
        }
    }

    fn input_str(&self, focus: &[Node<'a>], f: Func) -> R<Option<Str<'a>>> {
        match self.singleton(focus, f.name())? {
            None => Ok(None),
            Some(n) => match self.sys(n) {
                Some(Node::String(s)) => Ok(Some(s)),
                _ => Err(bad(f, "input must be a string")),
            },
        }
    }

    fn item_scope<'s>(&self, item: &'s Node<'a>, i: usize, s: Scope<'a, 's>) -> Scope<'a, 's> {
        Scope {
            this: std::slice::from_ref(item),
            index: Some(i),
            total: s.total,
        }
    }

    pub(crate) fn call(
        &self,
        f: Func,
        focus: Nodes<'a>,
        args: &[Expr],
        s: Scope<'a, '_>,
    ) -> R<Nodes<'a>> {
        use Func as F;
        Ok(match f {
            // ------------------------------------------------ existence
            F::Empty => boolean(focus.is_empty()),
            F::Exists => {
                if args.is_empty() {
                    boolean(!focus.is_empty())
                } else {
                    let mut any = false;
                    for (i, item) in focus.iter().enumerate() {
                        let r = self.eval(&args[0], self.item_scope(item, i, s))?;
                        if self.to_bool(&r, "exists")? == Some(true) {
                            any = true;
                            break;
                        }
                    }
                    boolean(any)
                }
            }
            F::All => {
                let mut all = true;
                for (i, item) in focus.iter().enumerate() {
                    let r = self.eval(&args[0], self.item_scope(item, i, s))?;
                    if self.to_bool(&r, "all")? != Some(true) {
                        all = false;
                        break;
                    }
                }
                boolean(all)
            }
            F::AllTrue | F::AnyTrue | F::AllFalse | F::AnyFalse => {
                let mut bools = Vec::with_capacity(focus.len());
                for n in &focus {
                    match self.sys(n) {
                        Some(Node::Boolean(b)) => bools.push(b),
                        _ => return Err(bad(f, "items must be booleans")),
                    }
                }
                boolean(match f {
                    F::AllTrue => bools.iter().all(|b| *b),
                    F::AnyTrue => bools.iter().any(|b| *b),
                    F::AllFalse => bools.iter().all(|b| !*b),
                    _ => bools.iter().any(|b| !*b),
                })
            }
            F::SubsetOf | F::SupersetOf => {
                let other = self.arg(args, 0, s)?;
                let (sub, sup) = if f == F::SubsetOf {
                    (&focus, &other)
                } else {
                    (&other, &focus)
                };
                boolean(sub.iter().all(|n| self.contains_item(sup, n)))
            }
            F::Count => vec![Node::Integer(focus.len() as i64)],
            F::Distinct => self.distinct(focus),
            F::IsDistinct => {
                let n = focus.len();
                boolean(self.distinct(focus).len() == n)
            }
            // ------------------------------------------------ filtering
            F::Where => {
                let mut out = Vec::new();
                for (i, item) in focus.iter().enumerate() {
                    let r = self.eval(&args[0], self.item_scope(item, i, s))?;
                    if self.to_bool(&r, "where")? == Some(true) {
                        out.push(item.clone());
                    }
                }
                out
            }
            F::Select => {
                let mut out = Vec::new();
                for (i, item) in focus.iter().enumerate() {
                    out.extend(self.eval(&args[0], self.item_scope(item, i, s))?);
                }
                out
            }
            F::Repeat | F::RepeatAll => {
                // Bounded in rounds and in items: `repeatAll(combine($this))` doubles
                // its queue every round.
                const MAX: usize = 10_000;
                let mut out: Nodes<'a> = Vec::new();
                let mut queue = focus;
                let mut rounds = 0;
                while !queue.is_empty() {
                    rounds += 1;
                    if rounds > MAX {
                        return invalid(format!("{}() does not terminate", f.name()));
                    }
                    let mut next = Vec::new();
                    for (i, item) in queue.iter().enumerate() {
                        for n in self.eval(&args[0], self.item_scope(item, i, s))? {
                            if f == F::Repeat && out.iter().any(|m| same_item(self, m, &n)) {
                                continue;
                            }
                            if out.len() == MAX {
                                return invalid(format!(
                                    "{}() collects more than {MAX} items",
                                    f.name()
                                ));
                            }
                            out.push(n.clone());
                            next.push(n);
                        }
                    }
                    queue = next;
                }
                out
            }
            F::OfType | F::As | F::Is => {
                let Expr::Type(t) = &args[0] else {
                    return Err(bad(f, "expected a type"));
                };
                self.check_type(t)?;
                match f {
                    // `as()` filters like `ofType()` rather than requiring a single item:
                    // core invariants (dom-3) apply it to `descendants()`.
                    F::OfType | F::As => focus
                        .into_iter()
                        .filter(|n| self.is_type(n, t, true))
                        .collect(),
                    _ => match self.singleton(&focus, f.name())? {
                        None => Vec::new(),
                        Some(n) => boolean(self.is_type(n, t, false)),
                    },
                }
            }
            // ------------------------------------------------ subsetting
            F::Single => match focus.len() {
                0 | 1 => focus,
                n => {
                    return Err(EvalError::NotSingleton {
                        what: "single()".into(),
                        count: n,
                    });
                }
            },
            F::First => focus.into_iter().take(1).collect(),
            F::Last => focus.into_iter().last().into_iter().collect(),
            F::Tail => focus.into_iter().skip(1).collect(),
            F::Skip => match self.arg_int(args, 0, s, f)? {
                Some(n) => focus.into_iter().skip(n.max(0) as usize).collect(),
                None => Vec::new(),
            },
            F::Take => match self.arg_int(args, 0, s, f)? {
                Some(n) => focus.into_iter().take(n.max(0) as usize).collect(),
                None => Vec::new(),
            },
            F::Intersect => {
                let other = self.arg(args, 0, s)?;
                let mut out: Nodes<'a> = Vec::new();
                for n in focus {
                    if self.contains_item(&other, &n) && !self.contains_item(&out, &n) {
                        out.push(n);
                    }
                }
                out
            }
            F::Exclude => {
                let other = self.arg(args, 0, s)?;
                focus
                    .into_iter()
                    .filter(|n| !self.contains_item(&other, n))
                    .collect()
            }
            F::Union => {
                let other = self.arg(args, 0, s)?;
                let mut out = self.distinct(focus);
                for n in other {
                    if !self.contains_item(&out, &n) {
                        out.push(n);
                    }
                }
                out
            }
            F::Combine => {
                let mut out = focus;
                out.extend(self.arg(args, 0, s)?);
                out
            }
            F::Iif => {
                if focus.len() > 1 {
                    return Err(EvalError::NotSingleton {
                        what: "iif()".into(),
                        count: focus.len(),
                    });
                }
                let sc = if focus.len() == 1 {
                    Scope {
                        this: &focus[..1],
                        index: s.index,
                        total: s.total,
                    }
                } else {
                    s
                };
                let c = self.eval(&args[0], sc)?;
                let cond = match self.singleton(&c, "iif")? {
                    None => None,
                    Some(n) => match self.sys(n) {
                        Some(Node::Boolean(b)) => Some(b),
                        _ => return Err(bad(f, "the criterion must be a boolean")),
                    },
                };
                if cond == Some(true) {
                    self.eval(&args[1], sc)?
                } else {
                    match args.get(2) {
                        Some(e) => self.eval(e, sc)?,
                        None => Vec::new(),
                    }
                }
            }
            // ------------------------------------------------ conversion
            F::ToBoolean
            | F::ToInteger
            | F::ToLong
            | F::ToDecimal
            | F::ToString
            | F::ToDate
            | F::ToDateTime
            | F::ToTime => {
                let Some(v) = self.input_value(&focus, f)? else {
                    return Ok(Vec::new());
                };
                one(convert(f, &v))
            }
            F::ConvertsToBoolean
            | F::ConvertsToInteger
            | F::ConvertsToLong
            | F::ConvertsToDecimal
            | F::ConvertsToString
            | F::ConvertsToDate
            | F::ConvertsToDateTime
            | F::ConvertsToTime => {
                if focus.is_empty() {
                    return Ok(Vec::new());
                }
                let target = match f {
                    F::ConvertsToBoolean => F::ToBoolean,
                    F::ConvertsToInteger => F::ToInteger,
                    F::ConvertsToLong => F::ToLong,
                    F::ConvertsToDecimal => F::ToDecimal,
                    F::ConvertsToString => F::ToString,
                    F::ConvertsToDate => F::ToDate,
                    F::ConvertsToDateTime => F::ToDateTime,
                    _ => F::ToTime,
                };
                let v = self.input_value(&focus, f)?;
                boolean(v.and_then(|v| convert(target, &v)).is_some())
            }
            F::ToQuantity | F::ConvertsToQuantity => {
                if focus.is_empty() {
                    return Ok(Vec::new());
                }
                let v = self.input_value(&focus, f)?;
                let unit = self.arg_str(args, 0, s, f)?;
                let q = v.and_then(|v| to_quantity(&v)).and_then(|q| match &unit {
                    None => Some(q),
                    Some(u) => {
                        let target = Quantity::new(Decimal::ONE, u);
                        target.convert_to(&q).map(|v| Quantity::new(v, u))
                    }
                });
                if f == F::ToQuantity {
                    one(q.map(Node::Quantity))
                } else {
                    boolean(q.is_some())
                }
            }
            // ------------------------------------------------ strings
            F::IndexOf | F::LastIndexOf => {
                let (Some(v), Some(sub)) =
                    (self.input_str(&focus, f)?, self.arg_str(args, 0, s, f)?)
                else {
                    return Ok(Vec::new());
                };
                let found = if f == F::IndexOf {
                    v.find(&*sub)
                } else {
                    v.rfind(&*sub)
                };
                vec![Node::Integer(match found {
                    Some(b) => v[..b].chars().count() as i64,
                    None => -1,
                })]
            }
            F::Substring => {
                let Some(v) = self.input_str(&focus, f)? else {
                    return Ok(Vec::new());
                };
                let Some(start) = self.arg_int(args, 0, s, f)? else {
                    return Ok(Vec::new());
                };
                let len = if args.len() > 1 {
                    match self.arg_int(args, 1, s, f)? {
                        Some(l) => Some(l),
                        None => return Ok(Vec::new()),
                    }
                } else {
                    None
                };
                let n = v.chars().count() as i64;
                if start < 0 || start >= n {
                    return Ok(Vec::new());
                }
                let take = len.unwrap_or(n).max(0) as usize;
                vec![string(v.chars().skip(start as usize).take(take).collect())]
            }
            F::StartsWith | F::EndsWith | F::Contains => {
                let (Some(v), Some(sub)) =
                    (self.input_str(&focus, f)?, self.arg_str(args, 0, s, f)?)
                else {
                    return Ok(Vec::new());
                };
                boolean(match f {
                    F::StartsWith => v.starts_with(&*sub),
                    F::EndsWith => v.ends_with(&*sub),
                    _ => v.contains(&*sub),
                })
            }
            F::Upper | F::Lower | F::Trim | F::Length | F::ToChars => {
                let Some(v) = self.input_str(&focus, f)? else {
                    return Ok(Vec::new());
                };
                match f {
                    F::Upper => vec![string(v.to_uppercase())],
                    F::Lower => vec![string(v.to_lowercase())],
                    F::Trim => vec![string(v.trim().to_string())],
                    F::Length => vec![Node::Integer(v.chars().count() as i64)],
                    _ => v.chars().map(|c| string(c.to_string())).collect(),
                }
            }
            F::Replace => {
                let Some(v) = self.input_str(&focus, f)? else {
                    return Ok(Vec::new());
                };
                let (Some(pat), Some(rep)) =
                    (self.arg_str(args, 0, s, f)?, self.arg_str(args, 1, s, f)?)
                else {
                    return Ok(Vec::new());
                };
                let out = if pat.is_empty() {
                    let mut o = String::new();
                    o.push_str(&rep);
                    for c in v.chars() {
                        o.push(c);
                        o.push_str(&rep);
                    }
                    o
                } else {
                    v.replace(&*pat, &rep)
                };
                vec![string(out)]
            }
            F::Matches | F::MatchesFull => {
                let (Some(v), Some(pat)) =
                    (self.input_str(&focus, f)?, self.arg_str(args, 0, s, f)?)
                else {
                    return Ok(Vec::new());
                };
                boolean(regex(&pat, f)?.is_match(&v))
            }
            F::ReplaceMatches => {
                let Some(v) = self.input_str(&focus, f)? else {
                    return Ok(Vec::new());
                };
                let (Some(pat), Some(rep)) =
                    (self.arg_str(args, 0, s, f)?, self.arg_str(args, 1, s, f)?)
                else {
                    return Ok(Vec::new());
                };
                if pat.is_empty() {
                    return Ok(vec![Node::String(v)]);
                }
                let r = regex(&pat, f)?;
                vec![string(r.replace_all(&v, &*rep).into_owned())]
            }
            F::Split => {
                let (Some(v), Some(sep)) =
                    (self.input_str(&focus, f)?, self.arg_str(args, 0, s, f)?)
                else {
                    return Ok(Vec::new());
                };
                if sep.is_empty() {
                    v.chars().map(|c| string(c.to_string())).collect()
                } else {
                    v.split(&*sep).map(|p| string(p.to_string())).collect()
                }
            }
            F::Join => {
                let sep = self.arg_str(args, 0, s, f)?;
                let mut out = String::new();
                for (i, n) in focus.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep.as_deref().unwrap_or(""));
                    }
                    match self.sys(n) {
                        Some(Node::String(v)) => out.push_str(&v),
                        _ => return Err(bad(f, "items must be strings")),
                    }
                }
                vec![string(out)]
            }
            F::Encode | F::Decode | F::Escape | F::Unescape => {
                let (Some(v), Some(kind)) =
                    (self.input_str(&focus, f)?, self.arg_str(args, 0, s, f)?)
                else {
                    return Ok(Vec::new());
                };
                one(codec(f, &v, &kind).map(string))
            }
            // ------------------------------------------------ math
            F::Abs => match self.input_value(&focus, f)? {
                None => Vec::new(),
                Some(Node::Integer(i)) => one(i.checked_abs().map(Node::Integer)),
                Some(Node::Decimal(d)) => vec![Node::Decimal(d.abs())],
                Some(Node::Quantity(q)) => vec![Node::Quantity(Quantity {
                    value: q.value.abs(),
                    unit: q.unit,
                })],
                Some(_) => return Err(bad(f, "input must be a number")),
            },
            F::Ceiling | F::Floor | F::Truncate => match self.input_value(&focus, f)? {
                None => Vec::new(),
                Some(Node::Integer(i)) => vec![Node::Integer(i)],
                Some(Node::Decimal(d)) => {
                    let v = match f {
                        F::Ceiling => d.ceil_i128(),
                        F::Floor => d.floor_i128(),
                        _ => d.trunc_i128(),
                    };
                    one(i64::try_from(v).ok().map(Node::Integer))
                }
                Some(_) => return Err(bad(f, "input must be a number")),
            },
            F::Round => {
                let Some(v) = self.input_value(&focus, f)? else {
                    return Ok(Vec::new());
                };
                let p = self.arg_int(args, 0, s, f)?.unwrap_or(0);
                if p < 0 {
                    return Err(bad(f, "precision must be >= 0"));
                }
                match v {
                    Node::Integer(_) | Node::Decimal(_) => {
                        vec![Node::Decimal(to_dec(&v).round(p as u32))]
                    }
                    _ => return Err(bad(f, "input must be a number")),
                }
            }
            F::Exp | F::Ln | F::Sqrt => {
                let Some(v) = self.input_value(&focus, f)? else {
                    return Ok(Vec::new());
                };
                let x = match v {
                    Node::Integer(_) | Node::Decimal(_) => to_dec(&v).to_f64(),
                    _ => return Err(bad(f, "input must be a number")),
                };
                let r = match f {
                    F::Exp => x.exp(),
                    F::Ln => x.ln(),
                    _ => x.sqrt(),
                };
                one(Decimal::from_f64(r).map(Node::Decimal))
            }
            F::Log | F::Power => {
                let Some(v) = self.input_value(&focus, f)? else {
                    return Ok(Vec::new());
                };
                let Some(a) = self.arg_value(args, 0, s, f)? else {
                    return Ok(Vec::new());
                };
                if !matches!(v, Node::Integer(_) | Node::Decimal(_))
                    || !matches!(a, Node::Integer(_) | Node::Decimal(_))
                {
                    return Err(bad(f, "arguments must be numbers"));
                }
                if let (F::Power, Node::Integer(b), Node::Integer(e)) = (f, &v, &a)
                    && *e >= 0
                {
                    return Ok(one(u32::try_from(*e)
                        .ok()
                        .and_then(|e| b.checked_pow(e))
                        .map(Node::Integer)));
                }
                let (x, y) = (to_dec(&v).to_f64(), to_dec(&a).to_f64());
                let r = if f == F::Log {
                    x.ln() / y.ln()
                } else {
                    x.powf(y)
                };
                one(Decimal::from_f64(r).map(Node::Decimal))
            }
            // ------------------------------------------------ tree
            F::Children => {
                let mut out = Vec::new();
                for n in &focus {
                    self.children(n, &mut out);
                }
                out
            }
            F::Descendants => {
                let mut out = Vec::new();
                let mut level = Vec::new();
                for n in &focus {
                    self.children(n, &mut level);
                }
                while !level.is_empty() {
                    let mut next = Vec::new();
                    for n in &level {
                        self.children(n, &mut next);
                    }
                    out.append(&mut level);
                    level = next;
                }
                out
            }
            F::Trace => focus,
            // ------------------------------------------------ utility
            F::Now => vec![Node::DateTime(self.now())],
            F::Today => vec![Node::Date(self.now().to_date())],
            F::TimeOfDay => {
                let n = self.now();
                vec![Node::Time(Time {
                    hour: n.hour,
                    minute: n.minute,
                    second: n.second,
                    millis: n.millis,
                    precision: Precision::Millisecond,
                })]
            }
            F::Not => one(self.to_bool(&focus, "not()")?.map(|b| Node::Boolean(!b))),
            F::Type => focus
                .iter()
                .map(|n| {
                    let (namespace, name) = self.type_of(n);
                    Node::TypeInfo { namespace, name }
                })
                .collect(),
            F::Aggregate => {
                let mut total = self.arg(args, 1, s)?;
                for (i, item) in focus.iter().enumerate() {
                    let sc = Scope {
                        this: std::slice::from_ref(item),
                        index: Some(i),
                        total: Some(&total),
                    };
                    total = self.eval(&args[0], sc)?;
                }
                total
            }
            F::Sort => self.sort(focus, args, s)?,
            F::DefineVariable => {
                let Some(name) = self.arg_str(args, 0, s, f)? else {
                    return Err(bad(f, "a name is required"));
                };
                if self.defined.borrow().iter().any(|(n, _)| **n == *name) {
                    return Err(bad(f, format!("variable {} already defined", &*name)));
                }
                let value = match args.get(1) {
                    Some(e) => self.eval(
                        e,
                        Scope {
                            this: &focus,
                            index: None,
                            total: s.total,
                        },
                    )?,
                    None => focus.clone(),
                };
                self.defined.borrow_mut().push((name.to_string(), value));
                focus
            }
            // ------------------------------------------------ precision (3.0)
            F::LowBoundary | F::HighBoundary => {
                let Some(v) = self.input_value(&focus, f)? else {
                    return Ok(Vec::new());
                };
                let p = self.arg_int(args, 0, s, f)?;
                one(boundary(&v, p, f == F::HighBoundary))
            }
            F::Precision => match self.input_value(&focus, f)? {
                None => Vec::new(),
                Some(Node::Decimal(d)) => vec![Node::Integer(d.scale() as i64)],
                Some(Node::Integer(_)) => vec![Node::Integer(0)],
                Some(Node::Date(d) | Node::DateTime(d)) => {
                    vec![Node::Integer(d.precision.digits(false))]
                }
                Some(Node::Time(t)) => vec![Node::Integer(t.precision.digits(true))],
                Some(_) => Vec::new(),
            },
            F::Comparable => {
                let (Some(Node::Quantity(a)), Some(Node::Quantity(b))) =
                    (self.input_value(&focus, f)?, self.arg_value(args, 0, s, f)?)
                else {
                    return Ok(Vec::new());
                };
                boolean(is_known_unit(&a.unit) && is_known_unit(&b.unit) && a.compare(&b).is_some())
            }
            F::YearOf
            | F::MonthOf
            | F::DayOf
            | F::HourOf
            | F::MinuteOf
            | F::SecondOf
            | F::MillisecondOf
            | F::TimezoneOffsetOf
            | F::DateOf
            | F::TimeOf => one(self.input_value(&focus, f)?.and_then(|v| component(f, &v))),
            // ------------------------------------------------ FHIR
            F::Resolve => self.resolve(&focus),
            F::Extension | F::HasExtension => {
                let Some(url) = self.arg_str(args, 0, s, f)? else {
                    return Ok(Vec::new());
                };
                let mut exts = Vec::new();
                for n in &focus {
                    self.child(n, "extension", &mut exts)?;
                }
                let found = exts.into_iter().filter(|e| {
                    e.as_json()
                        .and_then(|j| j.get("url"))
                        .and_then(Value::as_str)
                        == Some(&*url)
                });
                if f == F::HasExtension {
                    boolean(found.count() > 0)
                } else {
                    found.collect()
                }
            }
            F::HasValue => boolean(
                focus.len() == 1
                    && matches!(&focus[0], Node::Element(e) if e.value.is_some())
                    && self.is_primitive(&focus[0])
                    && self.sys(&focus[0]).is_some(),
            ),
            F::GetValue => {
                if focus.len() == 1 && self.is_primitive(&focus[0]) {
                    one(self.sys(&focus[0]))
                } else {
                    Vec::new()
                }
            }
            F::ConformsTo => {
                let Some(url) = self.arg_str(args, 0, s, f)? else {
                    return Ok(Vec::new());
                };
                let mut out = Vec::new();
                for n in &focus {
                    // Core profiles: the type itself. Other profiles cannot be checked
                    // here (empty).
                    if let Some(ty) = url.strip_prefix("http://hl7.org/fhir/StructureDefinition/")
                        && self.model.type_info(ty).is_some()
                    {
                        let (_, own) = self.type_of(n);
                        out.push(Node::Boolean(self.model.is_a(own, ty)));
                    } else if !url.contains("/StructureDefinition/") {
                        return Err(bad(f, format!("'{}' is not a profile URL", &*url)));
                    }
                }
                out
            }
            F::MemberOf | F::Subsumes | F::SubsumedBy => Vec::new(),
            F::HtmlChecks | F::HtmlChecks2 => boolean(true),
        })
    }

    fn is_primitive(&self, n: &Node<'a>) -> bool {
        match n {
            Node::Element(e) => {
                e.ty.starts_with("System.")
                    || matches!(self.model.type_info(e.ty), Some((_, Kind::Primitive)))
                    || (e.ty.is_empty() && e.value.is_some_and(|v| !v.is_object() && !v.is_array()))
            }
            _ => false,
        }
    }

    /// (namespace, name) of an item's type.
    pub(crate) fn type_of(&self, n: &Node<'a>) -> (&'static str, &'static str) {
        match n {
            Node::Element(e) if e.ty.starts_with("System.") => ("System", &e.ty[7..]),
            Node::Element(e) if !e.ty.is_empty() => ("FHIR", e.ty),
            Node::Element(_) => match self.sys(n) {
                Some(v) => ("System", v.type_name()),
                None => ("System", "Any"),
            },
            other => ("System", other.type_name()),
        }
    }

    fn sort(&self, focus: Nodes<'a>, args: &[Expr], s: Scope<'a, '_>) -> R<Nodes<'a>> {
        let mut keyed: Vec<(Vec<Nodes<'a>>, Node<'a>)> = Vec::with_capacity(focus.len());
        let keys: Vec<(&Expr, bool)> = args
            .iter()
            .map(|a| match a {
                Expr::Neg(inner) => (&**inner, true),
                other => (other, false),
            })
            .collect();
        for (i, item) in focus.iter().enumerate() {
            let mut ks = Vec::with_capacity(keys.len().max(1));
            if keys.is_empty() {
                ks.push(vec![item.clone()]);
            }
            for (k, _) in &keys {
                ks.push(self.eval(k, self.item_scope(item, i, s))?);
            }
            keyed.push((ks, item.clone()));
        }
        let cmp_one = |a: &Nodes<'a>, b: &Nodes<'a>| -> Ordering {
            match (a.first(), b.first()) {
                (None, None) => Ordering::Equal,
                (None, _) => Ordering::Less,
                (_, None) => Ordering::Greater,
                (Some(x), Some(y)) => self
                    .compare(x, y, "sort")
                    .ok()
                    .flatten()
                    .unwrap_or(Ordering::Equal),
            }
        };
        keyed.sort_by(|(ka, _), (kb, _)| {
            for (i, (a, b)) in ka.iter().zip(kb).enumerate() {
                let o = cmp_one(a, b);
                let o = if keys.get(i).is_some_and(|k| k.1) && !a.is_empty() && !b.is_empty() {
                    o.reverse()
                } else {
                    o
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        Ok(keyed.into_iter().map(|(_, n)| n).collect())
    }

    fn root_json(&self) -> Option<&'a Value> {
        self.env_json("rootResource")
            .or_else(|| self.env_json("resource"))
            .or_else(|| self.context.as_json())
    }

    fn env_json(&self, name: &str) -> Option<&'a Value> {
        self.env_var(name)?.first()?.as_json()
    }

    fn resolve(&self, focus: &[Node<'a>]) -> Nodes<'a> {
        let mut out = Vec::new();
        for n in focus {
            let (reference, json): (&str, Option<&'a Value>) = match n {
                Node::Element(e) => match e.value {
                    Some(Value::Object(m)) => match m.get("reference") {
                        Some(r @ Value::String(s)) => (s.as_str(), Some(r)),
                        _ => continue,
                    },
                    Some(v @ Value::String(s)) => (s.as_str(), Some(v)),
                    _ => continue,
                },
                Node::String(s) => (&**s, None),
                _ => continue,
            };
            let root = self.root_json();
            if let Some(id) = reference.strip_prefix('#') {
                if let Some(root) = root {
                    if id.is_empty() {
                        out.push(resource_node(root, self.model));
                    } else if let Some(c) = root
                        .get("contained")
                        .and_then(Value::as_array)
                        .and_then(|cs| {
                            cs.iter()
                                .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
                        })
                    {
                        out.push(resource_node(c, self.model));
                    }
                }
                continue;
            }
            let mut segs: Vec<&str> = reference.split('/').collect();
            if let Some(h) = segs.iter().position(|s| *s == "_history") {
                segs.truncate(h);
            }
            let (ty, id) = match segs.as_slice() {
                [.., t, i] => (*t, *i),
                _ => continue,
            };
            // Inside a Bundle, the entry itself.
            if let Some(root) = root
                && root.get("resourceType").and_then(Value::as_str) == Some("Bundle")
                && let Some(entries) = root.get("entry").and_then(Value::as_array)
            {
                let found = entries.iter().find_map(|e| {
                    let r = e.get("resource")?;
                    let full = e.get("fullUrl").and_then(Value::as_str);
                    let matches = full == Some(reference)
                        || (r.get("resourceType").and_then(Value::as_str) == Some(ty)
                            && r.get("id").and_then(Value::as_str) == Some(id));
                    matches.then_some(r)
                });
                if let Some(r) = found {
                    out.push(resource_node(r, self.model));
                    continue;
                }
            }
            if let Some((name, Kind::Resource)) = self.model.type_info(ty) {
                out.push(Node::Element(Element {
                    value: json,
                    ext: None,
                    ty: name,
                    path: name,
                }));
            }
        }
        out
    }
}

fn same_item<'a>(ctx: &Ctx<'a, '_>, a: &Node<'a>, b: &Node<'a>) -> bool {
    match (a, b) {
        (Node::Element(x), Node::Element(y)) => match (x.value, y.value) {
            (Some(p), Some(q)) => std::ptr::eq(p, q) && x.ty == y.ty,
            _ => false,
        },
        _ => ctx.item_eq(a, b) == Some(true),
    }
}

/// Converts a System value for the `toX()` functions.
fn convert<'a>(f: Func, v: &Node<'a>) -> Option<Node<'a>> {
    use Func as F;
    match f {
        F::ToBoolean => match v {
            Node::Boolean(b) => Some(Node::Boolean(*b)),
            Node::Integer(1) => Some(Node::Boolean(true)),
            Node::Integer(0) => Some(Node::Boolean(false)),
            Node::Decimal(d) if *d == Decimal::ONE => Some(Node::Boolean(true)),
            Node::Decimal(d) if d.is_zero() => Some(Node::Boolean(false)),
            Node::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(Node::Boolean(true)),
                "false" | "f" | "no" | "n" | "0" | "0.0" => Some(Node::Boolean(false)),
                _ => None,
            },
            _ => None,
        },
        F::ToInteger | F::ToLong => match v {
            Node::Integer(i) => Some(Node::Integer(*i)),
            Node::Boolean(b) => Some(Node::Integer(*b as i64)),
            Node::String(s) => {
                let t = s.strip_prefix(['+', '-']).unwrap_or(s);
                if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                    s.parse().ok().map(Node::Integer)
                } else {
                    None
                }
            }
            _ => None,
        },
        F::ToDecimal => match v {
            Node::Integer(i) => Some(Node::Decimal(Decimal::from_i64(*i))),
            Node::Decimal(d) => Some(Node::Decimal(*d)),
            Node::Boolean(b) => Some(Node::Decimal(Decimal::from_i64(*b as i64))),
            Node::String(s) if !s.contains(['e', 'E']) => Decimal::parse(s).map(Node::Decimal),
            _ => None,
        },
        F::ToString => match v {
            Node::String(s) => Some(Node::String(s.clone())),
            Node::Boolean(_)
            | Node::Integer(_)
            | Node::Decimal(_)
            | Node::Date(_)
            | Node::DateTime(_)
            | Node::Time(_)
            | Node::Quantity(_) => Some(string(v.to_string())),
            _ => None,
        },
        F::ToDate => match v {
            Node::Date(d) => Some(Node::Date(*d)),
            Node::DateTime(d) => Some(Node::Date(d.to_date())),
            Node::String(s) => DateTime::parse_date(s)
                .or_else(|| DateTime::parse_datetime(s).map(|d| d.to_date()))
                .map(Node::Date),
            _ => None,
        },
        F::ToDateTime => match v {
            Node::Date(d) | Node::DateTime(d) => Some(Node::DateTime(*d)),
            Node::String(s) => DateTime::parse_datetime(s).map(Node::DateTime),
            _ => None,
        },
        F::ToTime => match v {
            Node::Time(t) => Some(Node::Time(*t)),
            Node::String(s) => Time::parse(s.strip_prefix('T').unwrap_or(s)).map(Node::Time),
            _ => None,
        },
        _ => None,
    }
}

/// `toQuantity()` of a System value.
fn to_quantity(v: &Node<'_>) -> Option<Quantity> {
    match v {
        Node::Quantity(q) => Some(q.clone()),
        Node::Integer(i) => Some(Quantity::new(Decimal::from_i64(*i), "1")),
        Node::Decimal(d) => Some(Quantity::new(*d, "1")),
        Node::Boolean(b) => Some(Quantity::new(Decimal::new(if *b { 10 } else { 0 }, 1), "1")),
        Node::String(s) => parse_quantity(s),
        _ => None,
    }
}

/// `'1.5 'mg''`, `'3 days'`, `'4'`.
pub(crate) fn parse_quantity(s: &str) -> Option<Quantity> {
    let s = s.trim();
    let end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '-' || *c == '+'))))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(end);
    if num.contains(['e', 'E']) {
        return None;
    }
    let value = Decimal::parse(num)?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Some(Quantity::new(value, "1"));
    }
    if let Some(u) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        if u.is_empty() || u.contains('\'') {
            return None;
        }
        return Some(Quantity::new(value, u));
    }
    calendar_unit(rest).map(|_| Quantity::new(value, rest))
}

fn boundary<'a>(v: &Node<'a>, p: Option<i64>, high: bool) -> Option<Node<'a>> {
    match v {
        Node::Integer(_) | Node::Decimal(_) => dec_boundary(&to_dec(v), p, high).map(Node::Decimal),
        Node::Quantity(q) => dec_boundary(&q.value, p, high).map(|value| {
            Node::Quantity(Quantity {
                value,
                unit: q.unit.clone(),
            })
        }),
        Node::Date(d) => {
            let prec = match p.unwrap_or(8) {
                4 => Precision::Year,
                6 => Precision::Month,
                8 => Precision::Day,
                _ => return None,
            };
            Some(Node::Date(d.boundary(prec, high, true)))
        }
        Node::DateTime(d) => {
            let prec = match p.unwrap_or(17) {
                4 => Precision::Year,
                6 => Precision::Month,
                8 => Precision::Day,
                10 => Precision::Hour,
                12 => Precision::Minute,
                14 => Precision::Second,
                17 => Precision::Millisecond,
                _ => return None,
            };
            let mut d = *d;
            if d.precision == Precision::Hour {
                d.precision = Precision::Minute;
            }
            Some(Node::DateTime(d.boundary(prec, high, false)))
        }
        Node::Time(t) => {
            let prec = match p.unwrap_or(9) {
                2 => Precision::Hour,
                4 => Precision::Minute,
                6 => Precision::Second,
                9 => Precision::Millisecond,
                _ => return None,
            };
            Some(Node::Time(t.boundary(prec, high)))
        }
        _ => None,
    }
}

fn dec_boundary(d: &Decimal, p: Option<i64>, high: bool) -> Option<Decimal> {
    let p = p.unwrap_or(8);
    if !(0..=28).contains(&p) {
        return None;
    }
    let p = p as u32;
    // Half a unit in the last written digit.
    let half = Decimal::new(5, d.scale() + 1);
    let b = if high {
        d.checked_add(&half)?
    } else {
        d.checked_sub(&half)?
    };
    if p >= b.scale() {
        return Some(b.round(p));
    }
    // Towards the outside of the interval (a boundary that rounds to zero at this
    // precision stays zero).
    let t = b.truncate_to(p);
    if t.is_zero() {
        return Some(Decimal::new(0, p));
    }
    let exact = t.cmp_value(&b) == Ordering::Equal;
    let step = Decimal::new(1, p);
    Some(if exact {
        t
    } else if high && !b.is_negative() {
        t.checked_add(&step)?
    } else if !high && b.is_negative() {
        t.checked_sub(&step)?
    } else {
        t
    })
}

fn component<'a>(f: Func, v: &Node<'a>) -> Option<Node<'a>> {
    use Func as F;
    let i = |x: i64| Some(Node::Integer(x));
    match (f, v) {
        (F::YearOf, Node::Date(d) | Node::DateTime(d)) => i(d.year as i64),
        (F::MonthOf, Node::Date(d) | Node::DateTime(d)) if d.precision >= Precision::Month => {
            i(d.month as i64)
        }
        (F::DayOf, Node::Date(d) | Node::DateTime(d)) if d.precision >= Precision::Day => {
            i(d.day as i64)
        }
        (F::HourOf, Node::DateTime(d)) if d.precision >= Precision::Hour => i(d.hour as i64),
        (F::MinuteOf, Node::DateTime(d)) if d.precision >= Precision::Minute => i(d.minute as i64),
        (F::SecondOf, Node::DateTime(d)) if d.precision >= Precision::Second => i(d.second as i64),
        (F::MillisecondOf, Node::DateTime(d)) if d.precision >= Precision::Millisecond => {
            i(d.millis as i64)
        }
        (F::HourOf, Node::Time(t)) => i(t.hour as i64),
        (F::MinuteOf, Node::Time(t)) if t.precision >= Precision::Minute => i(t.minute as i64),
        (F::SecondOf, Node::Time(t)) if t.precision >= Precision::Second => i(t.second as i64),
        (F::MillisecondOf, Node::Time(t)) if t.precision >= Precision::Millisecond => {
            i(t.millis as i64)
        }
        (F::TimezoneOffsetOf, Node::DateTime(d)) => d.tz.map(|m| {
            Node::Decimal(
                Decimal::from_i64(m as i64)
                    .checked_div(&Decimal::from_i64(60))
                    .unwrap_or(Decimal::ZERO),
            )
        }),
        (F::DateOf, Node::Date(d) | Node::DateTime(d)) => Some(Node::Date(d.to_date())),
        (F::TimeOf, Node::DateTime(d)) if d.precision >= Precision::Hour => {
            Some(Node::Time(Time {
                hour: d.hour,
                minute: d.minute,
                second: d.second,
                millis: d.millis,
                precision: d.precision,
            }))
        }
        _ => None,
    }
}

fn json_unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_encode(data: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str, alphabet: &[u8; 64]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        if c == b'=' {
            break;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        let v = alphabet.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn codec(f: Func, v: &str, kind: &str) -> Option<String> {
    match (f, kind) {
        (Func::Encode, "base64") => Some(b64_encode(v.as_bytes(), B64)),
        (Func::Encode, "urlbase64") => Some(b64_encode(v.as_bytes(), B64URL)),
        (Func::Encode, "hex") => Some(v.bytes().map(|b| format!("{b:02x}")).collect()),
        (Func::Decode, "base64") => String::from_utf8(b64_decode(v, B64)?).ok(),
        (Func::Decode, "urlbase64") => String::from_utf8(b64_decode(v, B64URL)?).ok(),
        (Func::Decode, "hex") => {
            if v.len() % 2 != 0 {
                return None;
            }
            let bytes: Option<Vec<u8>> = (0..v.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(v.get(i..i + 2)?, 16).ok())
                .collect();
            String::from_utf8(bytes?).ok()
        }
        (Func::Escape, "html") => {
            let mut o = String::with_capacity(v.len());
            for c in v.chars() {
                match c {
                    '&' => o.push_str("&amp;"),
                    '<' => o.push_str("&lt;"),
                    '>' => o.push_str("&gt;"),
                    '"' => o.push_str("&quot;"),
                    '\'' => o.push_str("&#39;"),
                    c => o.push(c),
                }
            }
            Some(o)
        }
        (Func::Unescape, "html") => Some(
            v.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        ),
        (Func::Escape, "json") => {
            let s = serde_json::to_string(v).ok()?;
            Some(s[1..s.len() - 1].to_string())
        }
        (Func::Unescape, "json") => Some(json_unescape(v)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::fhirpath::{Env, EvalError, Expression};

    fn eval(src: &str) -> Result<usize, EvalError> {
        let patient = serde_json::json!({"resourceType": "Patient", "name": [{"given": ["A"]}]});
        let out = Expression::parse(src)
            .unwrap()
            .evaluate(&patient, &Env::new())?;
        Ok(out.len())
    }

    #[test]
    fn evaluations_are_bounded_in_what_they_produce() {
        let doubling = format!("1{}", ".select($this.combine($this))".repeat(40));
        let err = eval(&doubling).unwrap_err();
        assert!(err.to_string().contains("produces too much"), "{err}");
        let strings = format!("'ab'{}", ".select($this + $this)".repeat(40));
        let err = eval(&strings).unwrap_err();
        assert!(err.to_string().contains("produces too much"), "{err}");
        // Ordinary expressions are far from the budget.
        assert_eq!(eval("Patient.name.given | Patient.name.family").unwrap(), 1);
    }

    #[test]
    fn repeat_is_bounded_in_items_as_well_as_rounds() {
        // Each round doubles the queue: unbounded, this ran out of memory.
        let err = eval("1.repeatAll(combine($this))").unwrap_err();
        assert!(err.to_string().contains("more than 10000 items"), "{err}");
        assert!(eval("Patient.name.repeat(combine($this))").is_ok());
        assert_eq!(
            eval("1.repeatAll(iif($this < 1000, $this + 1, {}))").unwrap(),
            999
        );
        assert!(eval("1.repeatAll($this + 1)").is_err());
    }
}
