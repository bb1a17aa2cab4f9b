//! `compare --function "EXPR"`: a 2-D function typed by the user. The `evalexpr` crate
//! parses it; this module walks the parsed tree with forward-mode dual numbers, so the
//! gradient is exact (to rounding), not a finite difference.
//!
//! Variables `x1` and `x2` (or `x` and `y`); numbers are real (`1/2` is 0.5); `+ - * /`,
//! `^` for powers, unary minus, parentheses; `sin cos tan exp ln sqrt abs tanh`
//! (also as `math::sin`, ...); the constants `pi` and `e`.

use evalexpr::{DefaultNumericTypes, Node, Operator, Value};

/// A parsed expression, as a small tree of our own.
#[derive(Clone, Debug)]
pub enum Expr {
    /// A number.
    Const(f64),
    /// `x1` (0) or `x2` (1).
    Var(usize),
    /// `a + b`.
    Add(Box<Expr>, Box<Expr>),
    /// `a − b`.
    Sub(Box<Expr>, Box<Expr>),
    /// `a · b`.
    Mul(Box<Expr>, Box<Expr>),
    /// `a / b`.
    Div(Box<Expr>, Box<Expr>),
    /// `a ^ b`.
    Pow(Box<Expr>, Box<Expr>),
    /// `−a`.
    Neg(Box<Expr>),
    /// A function of one argument.
    Call(Func, Box<Expr>),
}

/// The functions an expression may call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Func {
    /// sin.
    Sin,
    /// cos.
    Cos,
    /// tan.
    Tan,
    /// exp.
    Exp,
    /// natural logarithm.
    Ln,
    /// square root.
    Sqrt,
    /// absolute value.
    Abs,
    /// hyperbolic tangent.
    Tanh,
}

/// The function names accepted, for messages.
const FUNCS: &str = "sin, cos, tan, exp, ln, sqrt, abs, tanh";

/// A value and its gradient: `v + d·ε`, ε² = 0, one ε per variable.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Dual {
    v: f64,
    d: [f64; 2],
}

impl Dual {
    fn constant(v: f64) -> Dual {
        Dual { v, d: [0.0; 2] }
    }
    /// The chain rule: f(self) with f' = `slope` at self.v.
    fn chain(self, value: f64, slope: f64) -> Dual {
        Dual {
            v: value,
            d: [slope * self.d[0], slope * self.d[1]],
        }
    }
}

impl Expr {
    /// Parses `text`; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let tree = evalexpr::build_operator_tree::<DefaultNumericTypes>(text)
            .map_err(|e| format!("cannot parse \"{text}\": {e}"))?;
        convert(&tree).map_err(|e| format!("\"{text}\": {e}"))
    }

    /// f at `x`.
    pub fn value(&self, x: [f64; 2]) -> f64 {
        self.dual(x).v
    }

    /// ∇f at `x`.
    pub fn gradient(&self, x: [f64; 2]) -> [f64; 2] {
        self.dual(x).d
    }

    fn dual(&self, x: [f64; 2]) -> Dual {
        match self {
            Expr::Const(c) => Dual::constant(*c),
            Expr::Var(k) => {
                let mut d = [0.0; 2];
                d[*k] = 1.0;
                Dual { v: x[*k], d }
            }
            Expr::Add(a, b) => {
                let (a, b) = (a.dual(x), b.dual(x));
                Dual {
                    v: a.v + b.v,
                    d: [a.d[0] + b.d[0], a.d[1] + b.d[1]],
                }
            }
            Expr::Sub(a, b) => {
                let (a, b) = (a.dual(x), b.dual(x));
                Dual {
                    v: a.v - b.v,
                    d: [a.d[0] - b.d[0], a.d[1] - b.d[1]],
                }
            }
            Expr::Mul(a, b) => {
                let (a, b) = (a.dual(x), b.dual(x));
                Dual {
                    v: a.v * b.v,
                    d: [a.d[0] * b.v + a.v * b.d[0], a.d[1] * b.v + a.v * b.d[1]],
                }
            }
            Expr::Div(a, b) => {
                let (a, b) = (a.dual(x), b.dual(x));
                let v = a.v / b.v;
                Dual {
                    v,
                    d: [(a.d[0] - v * b.d[0]) / b.v, (a.d[1] - v * b.d[1]) / b.v],
                }
            }
            Expr::Pow(a, b) => {
                let (a, b) = (a.dual(x), b.dual(x));
                let v = a.v.powf(b.v);
                // d(a^b) = b·a^(b−1)·da + a^b·ln(a)·db; the second term only where b
                // varies (so that x1^2 works for negative x1).
                let da = if b.v == 0.0 {
                    0.0
                } else {
                    b.v * a.v.powf(b.v - 1.0)
                };
                let db = if b.d == [0.0; 2] { 0.0 } else { v * a.v.ln() };
                Dual {
                    v,
                    d: [da * a.d[0] + db * b.d[0], da * a.d[1] + db * b.d[1]],
                }
            }
            Expr::Neg(a) => {
                let a = a.dual(x);
                Dual {
                    v: -a.v,
                    d: [-a.d[0], -a.d[1]],
                }
            }
            Expr::Call(f, a) => {
                let a = a.dual(x);
                let v = a.v;
                match f {
                    Func::Sin => a.chain(v.sin(), v.cos()),
                    Func::Cos => a.chain(v.cos(), -v.sin()),
                    Func::Tan => a.chain(v.tan(), 1.0 / (v.cos() * v.cos())),
                    Func::Exp => a.chain(v.exp(), v.exp()),
                    Func::Ln => a.chain(v.ln(), 1.0 / v),
                    Func::Sqrt => a.chain(v.sqrt(), 0.5 / v.sqrt()),
                    Func::Abs => a.chain(v.abs(), if v < 0.0 { -1.0 } else { 1.0 }),
                    Func::Tanh => a.chain(v.tanh(), 1.0 - v.tanh() * v.tanh()),
                }
            }
        }
    }
}

/// evalexpr's tree as an [`Expr`], refusing what a 2-D function cannot hold.
fn convert(node: &Node<DefaultNumericTypes>) -> Result<Expr, String> {
    let children = node.children();
    let arg = |k: usize| -> Result<Box<Expr>, String> {
        children
            .get(k)
            .map(convert)
            .transpose()?
            .map(Box::new)
            .ok_or_else(|| "an operator is missing an operand".to_string())
    };
    let expr = match node.operator() {
        Operator::RootNode => match children {
            [only] => convert(only)?,
            [] => return Err("the expression is empty".into()),
            _ => return Err("one expression only (no ';' or ',')".into()),
        },
        Operator::Add => Expr::Add(arg(0)?, arg(1)?),
        Operator::Sub => Expr::Sub(arg(0)?, arg(1)?),
        Operator::Mul => Expr::Mul(arg(0)?, arg(1)?),
        Operator::Div => Expr::Div(arg(0)?, arg(1)?),
        Operator::Exp => Expr::Pow(arg(0)?, arg(1)?),
        Operator::Neg => Expr::Neg(arg(0)?),
        Operator::Const { value } => match value {
            Value::Float(f) => Expr::Const(*f),
            Value::Int(i) => Expr::Const(*i as f64),
            other => return Err(format!("{other} is not a number")),
        },
        Operator::VariableIdentifierRead { identifier } => match identifier.as_str() {
            "x1" | "x" => Expr::Var(0),
            "x2" | "y" => Expr::Var(1),
            "pi" | "math::PI" => Expr::Const(std::f64::consts::PI),
            "e" | "math::E" => Expr::Const(std::f64::consts::E),
            other => {
                return Err(format!(
                    "unknown variable '{other}' (variables: x1 and x2, or x and y; constants: \
                     pi, e)"
                ));
            }
        },
        Operator::FunctionIdentifier { identifier } => {
            let name = identifier.strip_prefix("math::").unwrap_or(identifier);
            let f = match name {
                "sin" => Func::Sin,
                "cos" => Func::Cos,
                "tan" => Func::Tan,
                "exp" => Func::Exp,
                "ln" => Func::Ln,
                "sqrt" => Func::Sqrt,
                "abs" => Func::Abs,
                "tanh" => Func::Tanh,
                other => return Err(format!("unknown function '{other}' (functions: {FUNCS})")),
            };
            Expr::Call(f, arg(0)?)
        }
        other => return Err(format!("'{other}' has no place in a 2-D function")),
    };
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dual-number gradient against central differences on expressions that use
    /// every operator and function.
    #[test]
    fn gradients_match_finite_differences() {
        for text in [
            "(1 - x1)^2 + 100*(x2 - x1^2)^2",
            "sin(x) * cos(y) + exp(-x^2/4) - ln(2 + x2^2)",
            "sqrt(1 + x1^2 + x2^2) + abs(x1 - 0.3) + tanh(x2) / (2 + x1^2) + tan(0.2 * x1)",
            "x1^x2 + -x2 + pi*e",
        ] {
            let f = Expr::parse(text).unwrap();
            for p in [[0.7, 0.4], [1.3, -0.6], [0.2, 1.9]] {
                let g = f.gradient(p);
                for k in 0..2 {
                    let h = 1e-6;
                    let (mut a, mut b) = (p, p);
                    a[k] += h;
                    b[k] -= h;
                    let numeric = (f.value(a) - f.value(b)) / (2.0 * h);
                    assert!(
                        (numeric - g[k]).abs() <= 1e-6 * (1.0 + g[k].abs()),
                        "{text} at {p:?}: ∂{k} {} vs {numeric}",
                        g[k]
                    );
                }
            }
        }
    }

    #[test]
    fn rosenbrock_typed_equals_the_built_in_one() {
        let typed = Expr::parse("(1 - x1)^2 + 100*(x2 - x1^2)^2").unwrap();
        let builtin = crate::functions::by_name("rosenbrock").unwrap();
        for p in [[-1.2, 1.0], [0.5, 0.5], [1.0, 1.0]] {
            assert_eq!(typed.value(p), (builtin.f)(p));
            let (a, b) = (typed.gradient(p), (builtin.grad)(p));
            assert!((a[0] - b[0]).abs() < 1e-12 && (a[1] - b[1]).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_expressions_say_why() {
        for (text, message) in [
            ("x1 + z", "unknown variable 'z'"),
            ("foo(x1)", "unknown function 'foo'"),
            ("x1 +", "\"x1 +\": an operator is missing an operand"),
            ("x1 (", "cannot parse \"x1 (\""),
            ("x1 == 2", "has no place in a 2-D function"),
            ("", "the expression is empty"),
        ] {
            let e = Expr::parse(text).unwrap_err();
            assert!(e.contains(message), "{text:?}: {e}");
        }
    }
}
