//! FHIRPath over JSON resources.
//!
//! ```
//! use ember_fhir::fhirpath::{Env, Expression};
//! let patient = serde_json::json!({"resourceType": "Patient", "birthDate": "1974-12-25"});
//! let e = Expression::parse("Patient.birthDate < @2000-01-01").unwrap();
//! let out = e.evaluate(&patient, &Env::new()).unwrap();
//! assert_eq!(out[0].as_bool(), Some(true));
//! ```
//!
//! An [`Expression`] is parsed once and evaluated many times (it is `Send + Sync`).
//! Evaluation borrows the resource: the result [`Node`]s point into it, each with
//! its FHIR type (from the R4 definitions through the [`Model`] trait), or are
//! computed System values.
//!
//! Modules: `parser` (lexer + precedence parser → `ast`), `eval` (navigation,
//! typing, operators), `functions` (the function library), `decimal`, `temporal`,
//! `quantity` (exact decimals, partial dates, UCUM units), `model` (type
//! information), `node` (collection items).

mod ast;
mod decimal;
mod eval;
mod functions;
mod model;
mod node;
mod parser;
mod quantity;
mod temporal;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::Value;

pub use decimal::Decimal;
pub use eval::{Env, EvalError};
pub use model::{DEFINITIONS, DefinitionsModel, Kind, Model, NoModel, Prop};
pub use node::{Element, Node, Str};
pub use parser::ParseError;
pub use quantity::{Quantity, to_canonical};
pub use temporal::{DateTime, Precision, Time};

/// A compiled FHIRPath expression.
#[derive(Clone, Debug)]
pub struct Expression {
    source: Arc<str>,
    ast: Arc<ast::Expr>,
}

impl Expression {
    /// Compiles `src`; unknown functions and wrong argument counts are reported
    /// here, with the byte position.
    pub fn parse(src: &str) -> Result<Self, ParseError> {
        let ast = parser::parse(src)?;
        Ok(Expression {
            source: Arc::from(src),
            ast: Arc::new(ast),
        })
    }

    /// The text the expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against a resource (`%resource`, `%rootResource` and `%context`
    /// are the resource unless `env` sets them).
    pub fn evaluate<'a>(
        &self,
        resource: &'a Value,
        env: &Env<'a>,
    ) -> Result<Vec<Node<'a>>, EvalError> {
        let root = node::resource_node(resource, env.model());
        self.evaluate_node(root, env)
    }

    /// The top-level elements of a resource that this expression's result is drawn
    /// from, when it is a path from the resource (`Observation.code.coding`, `code`),
    /// narrowed or filtered (`as`, `ofType`, `where`, `first`, `resolve`,
    /// `extension`…), indexed, or a union of such: on a resource that has none of them
    /// the expression selects nothing (see [`has_any_element`]). A leading type name
    /// (`Observation`, `Resource`) is listed too, as navigation falls back to a child
    /// of that name when the resource is not of the type. `None` for any other shape.
    pub fn root_elements(&self) -> Option<Vec<String>> {
        let mut out = Vec::new();
        roots(&self.ast, &mut out).then_some(out)
    }

    /// Evaluates with an arbitrary node (an element, or a computed value) as the
    /// context.
    pub fn evaluate_node<'a>(
        &self,
        context: Node<'a>,
        env: &Env<'a>,
    ) -> Result<Vec<Node<'a>>, EvalError> {
        let ctx = eval::Ctx::new(env, context.clone());
        let this = [context];
        ctx.eval(
            &self.ast,
            eval::Scope {
                this: &this,
                index: None,
                total: None,
            },
        )
    }

    /// Evaluates as a boolean condition (invariants): `None` when the result is
    /// empty; an error when it is not a single item.
    pub fn evaluate_bool<'a>(
        &self,
        resource: &'a Value,
        env: &Env<'a>,
    ) -> Result<Option<bool>, EvalError> {
        let out = self.evaluate(resource, env)?;
        let root = node::resource_node(resource, env.model());
        let ctx = eval::Ctx::new(env, root);
        ctx.to_bool(&out, "condition")
    }
}

/// Adds the top-level elements `e` selects from to `out` (see
/// [`Expression::root_elements`]); false when `e` is of another shape.
fn roots(e: &ast::Expr, out: &mut Vec<String>) -> bool {
    use ast::{BinOp, Expr, Func};
    match e {
        Expr::Ident(name) => {
            out.push(name.to_string());
            // A bare type name selects the resource itself.
            !is_type_name(name)
        }
        Expr::Member(base, name) => match &**base {
            Expr::Ident(ty) if is_type_name(ty) => {
                out.push(ty.to_string());
                out.push(name.to_string());
                true
            }
            base => roots(base, out),
        },
        Expr::As(base, _) | Expr::Indexer(base, _) => roots(base, out),
        Expr::Binary(BinOp::Union, a, b) => roots(a, out) && roots(b, out),
        Expr::Call {
            target: Some(base),
            func,
            args,
        } => match func {
            // Empty on an empty focus, whatever the arguments.
            Func::Where
            | Func::Select
            | Func::Repeat
            | Func::RepeatAll
            | Func::OfType
            | Func::As
            | Func::Single
            | Func::First
            | Func::Last
            | Func::Tail
            | Func::Skip
            | Func::Take
            | Func::Distinct
            | Func::Resolve
            | Func::Children
            | Func::Descendants => roots(base, out),
            Func::Union | Func::Combine => roots(base, out) && roots(&args[0], out),
            // `Patient.extension(url)`: the resource's own extensions.
            Func::Extension => match &**base {
                Expr::Ident(ty) if is_type_name(ty) => {
                    out.extend([ty.to_string(), "extension".to_owned()]);
                    true
                }
                base => roots(base, out),
            },
            _ => false,
        },
        _ => false,
    }
}

/// Whether an identifier at the start of a path names a type (`Observation`,
/// `Resource`) rather than an element: type names start with a capital.
pub(crate) fn is_type_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
}

/// Whether `resource` has one of the top-level elements `names` (by its JSON name, its
/// `_name` for a primitive's extensions, or `nameType` for a choice element).
pub fn has_any_element(resource: &Value, names: &[String]) -> bool {
    let Some(map) = resource.as_object() else {
        return true;
    };
    map.keys().any(|key| {
        let key = key.strip_prefix('_').unwrap_or(key);
        names.iter().any(|name| {
            key.strip_prefix(name.as_str()).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase())
            })
        })
    })
}

/// The children called `name` of an element node (a choice element by its base name:
/// `value` gives `valueQuantity`), typed as navigation types them; empty when `name`
/// is the JSON name of a choice member.
pub fn child_nodes<'a>(node: &Node<'a>, name: &str) -> Vec<Node<'a>> {
    let env: Env<'a> = Env::new();
    let ctx = eval::Ctx::new(&env, node.clone());
    let mut out = Vec::new();
    if ctx.child(node, name, &mut out).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    #[test]
    fn expression_is_send_sync() {
        assert_send_sync::<super::Expression>();
    }
}
