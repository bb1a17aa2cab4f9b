//! The test functions of `gradstep compare`: f, ∇f, a start point and what the
//! pictures show.

use std::f64::consts::PI;

use std::sync::OnceLock;

use crate::expr::Expr;
use crate::plot::View;

/// A 2-D test function.
pub struct Function {
    /// The name on the command line.
    pub name: &'static str,
    /// f, written out for titles and `--help`.
    pub formula: &'static str,
    /// f.
    pub f: fn([f64; 2]) -> f64,
    /// ∇f.
    pub grad: fn([f64; 2]) -> [f64; 2],
    /// Where every run starts.
    pub start: [f64; 2],
    /// The global minimizer and f there; `None` when f is unbounded below (the saddle).
    pub minimum: Option<([f64; 2], f64)>,
    /// The rectangle the trajectory picture shows.
    pub view: View,
    /// The contour levels drawn.
    pub levels: &'static [f64],
}

/// Every function, in the order `--help` lists them.
pub const FUNCTIONS: [Function; 5] = [
    Function {
        name: "quadratic",
        formula: "0.1·x1² + 2·x2²",
        f: |[x, y]| 0.1 * x * x + 2.0 * y * y,
        grad: |[x, y]| [0.2 * x, 4.0 * y],
        start: [-5.0, -2.0],
        minimum: Some(([0.0, 0.0], 0.0)),
        view: View {
            x: (-5.5, 1.5),
            y: (-3.5, 3.5),
        },
        levels: &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0],
    },
    Function {
        name: "rosenbrock",
        formula: "(1 − x1)² + 100·(x2 − x1²)²",
        f: |[x, y]| (1.0 - x) * (1.0 - x) + 100.0 * (y - x * x) * (y - x * x),
        grad: |[x, y]| {
            [
                -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                200.0 * (y - x * x),
            ]
        },
        start: [-1.2, 1.0],
        minimum: Some(([1.0, 1.0], 0.0)),
        view: View {
            x: (-2.0, 2.0),
            y: (-1.0, 3.0),
        },
        levels: &[0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0],
    },
    Function {
        name: "beale",
        formula: "(1.5 − x1 + x1·x2)² + (2.25 − x1 + x1·x2²)² + (2.625 − x1 + x1·x2³)²",
        f: |[x, y]| {
            let (a, b, c) = beale_terms(x, y);
            a * a + b * b + c * c
        },
        grad: |[x, y]| {
            let (a, b, c) = beale_terms(x, y);
            [
                2.0 * (a * (y - 1.0) + b * (y * y - 1.0) + c * (y * y * y - 1.0)),
                2.0 * x * (a + 2.0 * b * y + 3.0 * c * y * y),
            ]
        },
        start: [1.0, 1.0],
        minimum: Some(([3.0, 0.5], 0.0)),
        view: View {
            x: (-1.0, 4.5),
            y: (-1.5, 2.0),
        },
        levels: &[0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0],
    },
    Function {
        name: "saddle",
        formula: "x1² − x2²",
        f: |[x, y]| x * x - y * y,
        grad: |[x, y]| [2.0 * x, -2.0 * y],
        start: [-1.5, 0.01],
        minimum: None,
        view: View {
            x: (-2.0, 2.0),
            y: (-2.0, 2.0),
        },
        levels: &[-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0],
    },
    Function {
        name: "rastrigin",
        formula: "20 + Σ (xi² − 10·cos(2π·xi))",
        f: |[x, y]| {
            20.0 + x * x - 10.0 * (2.0 * PI * x).cos() + y * y - 10.0 * (2.0 * PI * y).cos()
        },
        grad: |[x, y]| {
            [
                2.0 * x + 20.0 * PI * (2.0 * PI * x).sin(),
                2.0 * y + 20.0 * PI * (2.0 * PI * y).sin(),
            ]
        },
        start: [-2.0, 3.5],
        minimum: Some(([0.0, 0.0], 0.0)),
        view: View {
            x: (-4.5, 4.5),
            y: (-4.5, 4.5),
        },
        levels: &[5.0, 10.0, 20.0, 30.0, 40.0, 50.0],
    },
];

fn beale_terms(x: f64, y: f64) -> (f64, f64, f64) {
    (
        1.5 - x + x * y,
        2.25 - x + x * y * y,
        2.625 - x + x * y * y * y,
    )
}

/// The function called `name`.
pub fn by_name(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The name of a typed function in tables and titles.
pub const TYPED_NAME: &str = "your function";

/// The typed expression of this run (a program runs one `compare` or `sweep`).
static TYPED: OnceLock<Expr> = OnceLock::new();

fn typed_expr() -> &'static Expr {
    TYPED
        .get()
        .expect("a typed function is parsed before it is called")
}

/// The function an expression such as `x1^2 + 3*x2^2` describes: its gradient by
/// forward-mode dual numbers, shown on [−3, 3]² (widened to the start point), from
/// (1, 1) unless `--start` says otherwise, contour levels at quantiles of f there.
pub fn typed(text: &str) -> Result<&'static Function, String> {
    let expr = Expr::parse(text)?;
    let expr = match TYPED.set(expr) {
        Ok(()) => typed_expr(),
        Err(_) => return Err("only one typed function per run".into()),
    };
    let view = View {
        x: (-3.0, 3.0),
        y: (-3.0, 3.0),
    };
    let mut values: Vec<f64> = (0..41 * 41)
        .map(|k| {
            let (i, j) = (f64::from(k % 41), f64::from(k / 41));
            expr.value([-3.0 + 0.15 * i, -3.0 + 0.15 * j])
        })
        .filter(|v| v.is_finite())
        .collect();
    values.sort_by(f64::total_cmp);
    // Denser near the low end, where the runs end.
    let mut levels: Vec<f64> = [0.01, 0.03, 0.08, 0.15, 0.25, 0.4, 0.6, 0.8]
        .iter()
        .filter_map(|q| values.get((values.len() as f64 * q) as usize).copied())
        .map(|v| format!("{v:.2e}").parse().unwrap_or(v))
        .collect();
    levels.dedup();
    let function = Function {
        name: TYPED_NAME,
        formula: Box::leak(text.trim().to_string().into_boxed_str()),
        f: |x| typed_expr().value(x),
        grad: |x| typed_expr().gradient(x),
        start: [1.0, 1.0],
        minimum: None,
        view,
        levels: Box::leak(levels.into_boxed_slice()),
    };
    Ok(Box::leak(Box::new(function)))
}

/// The names, for messages.
pub fn names() -> String {
    FUNCTIONS.map(|f| f.name).join(", ")
}

/// Short numbers for labels: `-1.2`, `1`, `0.001`, `1e-8`, `1e16`.
pub fn num(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

impl Function {
    /// The operations of one evaluation of a typed function (0 for a built-in one).
    pub fn operations(&self) -> usize {
        match TYPED.get() {
            Some(expr) if self.name == TYPED_NAME => expr.operations(),
            _ => 0,
        }
    }

    /// What a step on this function costs, in steps on a built-in one: a typed
    /// function's value and gradient take about 7 ns per operation, a built-in one's
    /// step about 0.1–0.6 µs, so one per 10 operations (at least 1).
    pub fn step_weight(&self) -> u64 {
        (self.operations() as u64 / 10).max(1)
    }

    /// What "reaching the tolerance" means for this function.
    pub fn target(&self, tol: f64) -> Target {
        if self.name == TYPED_NAME {
            return Target::Unknown;
        }
        match self.minimum {
            Some((_, value)) => Target::Gap(value, tol),
            None => Target::Escape,
        }
    }

    /// The legend entry of the contour lines.
    pub fn levels_label(&self) -> String {
        let l = self.levels;
        let shown: Vec<String> = if l.len() > 5 {
            l[..3]
                .iter()
                .map(|v| num(*v))
                .chain(["…".to_string(), num(l[l.len() - 1])])
                .collect()
        } else {
            l.iter().map(|v| num(*v)).collect()
        };
        format!("f = {}", shown.join(", "))
    }
}

/// When a run counts as having reached the tolerance.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// f − f* ≤ tol, for a function with minimum value f*.
    Gap(f64, f64),
    /// f ≤ −1: the saddle has no minimum; the run has left the saddle point.
    Escape,
    /// A typed function: its minimum is not known, so there is nothing to reach.
    Unknown,
}

impl Target {
    /// Whether f(x) = `loss` meets the target.
    pub fn reached(self, loss: f64) -> bool {
        match self {
            Target::Gap(min, tol) => loss - min <= tol,
            Target::Escape => loss <= -1.0,
            Target::Unknown => false,
        }
    }

    /// The table heading of the "steps to target" column.
    pub fn heading(self) -> &'static str {
        match self {
            Target::Gap(..) => "steps to tol",
            Target::Escape => "steps to f ≤ −1",
            Target::Unknown => "(f* unknown)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every gradient against central differences, at a few points.
    #[test]
    fn gradients_match_finite_differences() {
        let points = [[-1.2, 1.0], [0.3, -0.7], [2.5, 1.5], [1.0, 1.0]];
        for f in &FUNCTIONS {
            for p in points {
                let g = (f.grad)(p);
                for k in 0..2 {
                    let h = 1e-6;
                    let (mut a, mut b) = (p, p);
                    a[k] += h;
                    b[k] -= h;
                    let numeric = ((f.f)(a) - (f.f)(b)) / (2.0 * h);
                    assert!(
                        (numeric - g[k]).abs() <= 1e-5 * (1.0 + g[k].abs()),
                        "{} at {p:?}: ∂{k} {} vs {numeric}",
                        f.name,
                        g[k]
                    );
                }
            }
        }
    }

    #[test]
    fn minima_are_minima() {
        for f in &FUNCTIONS {
            if let Some((x, value)) = f.minimum {
                assert_eq!((f.f)(x), value, "{}", f.name);
                assert_eq!((f.grad)(x), [0.0, 0.0], "{}", f.name);
            }
        }
    }
}
