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
