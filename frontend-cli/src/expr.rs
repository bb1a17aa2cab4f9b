//! `compare --function "EXPR"`: a 2-D function typed by the user. The `evalexpr` crate
//! parses it; this module walks the parsed tree with forward-mode dual numbers, so the
//! gradient is exact (to rounding), not a finite difference.
//!
//! Variables `x1` and `x2` (or `x` and `y`); numbers are real (`1/2` is 0.5); `+ - * /`,
//! `^` for powers, unary minus, parentheses; `sin cos tan exp ln sqrt abs tanh`
//! (also as `math::sin`, ...); the constants `pi` and `e`.

use evalexpr::{DefaultNumericTypes, Node, Operator, Value};

/// The longest expression accepted, in characters. Generous for a function typed by
/// hand (Beale's function written out is 80), and short enough that evalexpr's
/// recursive parser and tree stay far from the end of the stack (a chain of 1000 unary
/// minus signs is a tree 1000 deep) and that every evaluation is quick.
pub const MAX_CHARS: usize = 1000;

/// The deepest nesting of parentheses accepted (a function call's included).
pub const MAX_NESTING: usize = 50;

/// A parsed expression: its operations in postfix order, evaluated on a stack, so that
/// neither evaluating nor dropping it recurses however deep the expression is.
#[derive(Clone, Debug)]
pub struct Expr {
    /// The operations; each pops its operands and pushes its result.
    ops: Vec<Op>,
    /// The most values on the stack at once.
    depth: usize,
}

/// One operation of an [`Expr`].
#[derive(Clone, Copy, Debug)]
enum Op {
    /// Pushes a number.
    Const(f64),
    /// Pushes `x1` (0) or `x2` (1).
    Var(usize),
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a ^ b`.
    Pow,
    /// `−a`.
    Neg,
    /// A function of one argument.
    Call(Func),
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
    /// Parses `text`; the message says what is wrong. Text longer than [`MAX_CHARS`]
    /// or nested deeper than [`MAX_NESTING`] is refused before it reaches the parser.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let chars = text.chars().count();
        if chars > MAX_CHARS {
            return Err(format!(
                "the expression is {chars} characters long (at most {MAX_CHARS})"
            ));
        }
        let nesting = nesting(text);
        if nesting > MAX_NESTING {
            return Err(format!(
                "the expression nests parentheses {nesting} deep (at most {MAX_NESTING})"
            ));
        }
        let tree = evalexpr::build_operator_tree::<DefaultNumericTypes>(text)
            .map_err(|e| format!("cannot parse \"{text}\": {e}"))?;
        compile(&tree).map_err(|e| format!("\"{text}\": {e}"))
    }

    /// The number of operations (numbers, variables, operators and calls).
    pub fn operations(&self) -> usize {
        self.ops.len()
    }

    /// f at `x`.
    pub fn value(&self, x: [f64; 2]) -> f64 {
        let mut stack: Vec<f64> = Vec::with_capacity(self.depth);
        for op in &self.ops {
            let v = match *op {
                Op::Const(c) => c,
                Op::Var(k) => x[k],
                Op::Neg => -pop(&mut stack),
                Op::Call(f) => f.apply(pop(&mut stack)),
                binary => {
                    let b = pop(&mut stack);
                    let a = pop(&mut stack);
                    match binary {
                        Op::Add => a + b,
                        Op::Sub => a - b,
                        Op::Mul => a * b,
                        Op::Div => a / b,
                        _ => a.powf(b),
                    }
                }
            };
            stack.push(v);
        }
        pop(&mut stack)
    }

    /// ∇f at `x`.
    pub fn gradient(&self, x: [f64; 2]) -> [f64; 2] {
        let mut stack: Vec<Dual> = Vec::with_capacity(self.depth);
        for op in &self.ops {
            let v = match *op {
                Op::Const(c) => Dual::constant(c),
                Op::Var(k) => {
                    let mut d = [0.0; 2];
                    d[k] = 1.0;
                    Dual { v: x[k], d }
                }
                Op::Neg => {
                    let a = pop(&mut stack);
                    Dual {
                        v: -a.v,
                        d: [-a.d[0], -a.d[1]],
                    }
                }
                Op::Call(f) => {
                    let a = pop(&mut stack);
                    a.chain(f.apply(a.v), f.slope(a.v))
                }
                binary => {
                    let b = pop(&mut stack);
                    let a = pop(&mut stack);
                    binary_dual(binary, a, b)
                }
            };
            stack.push(v);
        }
        pop(&mut stack).d
    }
}

/// The top of an evaluation stack; [`compile`] leaves every operation its operands, so
/// an empty stack (NaN) cannot happen.
fn pop<T: Default>(stack: &mut Vec<T>) -> T {
    stack.pop().unwrap_or_default()
}

impl Default for Dual {
    fn default() -> Dual {
        Dual::constant(f64::NAN)
    }
}

/// `a op b` on dual numbers, for the binary operations.
fn binary_dual(op: Op, a: Dual, b: Dual) -> Dual {
    match op {
        Op::Add => Dual {
            v: a.v + b.v,
            d: [a.d[0] + b.d[0], a.d[1] + b.d[1]],
        },
        Op::Sub => Dual {
            v: a.v - b.v,
            d: [a.d[0] - b.d[0], a.d[1] - b.d[1]],
        },
        Op::Mul => Dual {
            v: a.v * b.v,
            d: [a.d[0] * b.v + a.v * b.d[0], a.d[1] * b.v + a.v * b.d[1]],
        },
        Op::Div => {
            let v = a.v / b.v;
            Dual {
                v,
                d: [(a.d[0] - v * b.d[0]) / b.v, (a.d[1] - v * b.d[1]) / b.v],
            }
        }
        _ => {
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
    }
}

impl Func {
    /// The function at `v`.
    fn apply(self, v: f64) -> f64 {
        match self {
            Func::Sin => v.sin(),
            Func::Cos => v.cos(),
            Func::Tan => v.tan(),
            Func::Exp => v.exp(),
            Func::Ln => v.ln(),
            Func::Sqrt => v.sqrt(),
            Func::Abs => v.abs(),
            Func::Tanh => v.tanh(),
        }
    }

    /// Its derivative at `v`.
    fn slope(self, v: f64) -> f64 {
        match self {
            Func::Sin => v.cos(),
            Func::Cos => -v.sin(),
            Func::Tan => 1.0 / (v.cos() * v.cos()),
            Func::Exp => v.exp(),
            Func::Ln => 1.0 / v,
            Func::Sqrt => 0.5 / v.sqrt(),
            Func::Abs => {
                if v < 0.0 {
                    -1.0
                } else {
                    1.0
                }
            }
            Func::Tanh => 1.0 - v.tanh() * v.tanh(),
        }
    }
}

/// The deepest nesting of parentheses in `text` (unbalanced ones are the parser's to
/// report).
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// evalexpr's tree as an [`Expr`], refusing what a 2-D function cannot hold. The walk
/// keeps its own stack instead of recursing.
fn compile(root: &Node<DefaultNumericTypes>) -> Result<Expr, String> {
    // Nodes to visit: before their children (false) or after them (true).
    let mut pending: Vec<(&Node<DefaultNumericTypes>, bool)> = vec![(root, false)];
    let mut ops = Vec::new();
    let (mut height, mut depth) = (0usize, 0usize);
    while let Some((node, visited)) = pending.pop() {
        let children = node.children();
        let (arity, op) = match node.operator() {
            Operator::RootNode => match children {
                [_] => (1, None),
                [] => return Err("the expression is empty".into()),
                _ => return Err("one expression only (no ';' or ',')".into()),
            },
            Operator::Add => (2, Some(Op::Add)),
            Operator::Sub => (2, Some(Op::Sub)),
            Operator::Mul => (2, Some(Op::Mul)),
            Operator::Div => (2, Some(Op::Div)),
            Operator::Exp => (2, Some(Op::Pow)),
            Operator::Neg => (1, Some(Op::Neg)),
            Operator::Const { value } => match value {
                Value::Float(f) => (0, Some(Op::Const(*f))),
                Value::Int(i) => (0, Some(Op::Const(*i as f64))),
                other => return Err(format!("{other} is not a number")),
            },
            Operator::VariableIdentifierRead { identifier } => {
                let op = match identifier.as_str() {
                    "x1" | "x" => Op::Var(0),
                    "x2" | "y" => Op::Var(1),
                    "pi" | "math::PI" => Op::Const(std::f64::consts::PI),
                    "e" | "math::E" => Op::Const(std::f64::consts::E),
                    other => {
                        return Err(format!(
                            "unknown variable '{other}' (variables: x1 and x2, or x and y; \
                             constants: pi, e)"
                        ));
                    }
                };
                (0, Some(op))
            }
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
                    other => {
                        return Err(format!("unknown function '{other}' (functions: {FUNCS})"));
                    }
                };
                (1, Some(Op::Call(f)))
            }
            other => return Err(format!("'{other}' has no place in a 2-D function")),
        };
        if children.len() < arity {
            return Err("an operator is missing an operand".into());
        }
        if visited {
            if let Some(op) = op {
                // Operands pop off, the result goes on.
                height = height + 1 - arity;
                depth = depth.max(height);
                ops.push(op);
            }
        } else {
            pending.push((node, true));
            // The first operand is evaluated first: pushed last.
            pending.extend(children[..arity].iter().rev().map(|c| (c, false)));
        }
    }
    Ok(Expr { ops, depth })
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
