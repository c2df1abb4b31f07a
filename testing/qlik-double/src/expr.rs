//! Chart expressions: aggregations (`Sum`, `Count`, `Count(DISTINCT …)`, `Avg`, `Min`, `Max`,
//! `Only`), plain field references, numbers, texts and the operators `+ - * / &`.
//!
//! Set analysis, `Aggr`, `TOTAL`, inter-record and most scalar functions are not understood;
//! such an expression is refused with a message rather than computed wrongly.

use std::collections::HashSet;

use mad_core::{Table, Value};

/// The most `$(variable)` expansions one expression may go through, against cycles.
const MAX_EXPANSIONS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Sum,
    Count,
    Avg,
    Min,
    Max,
    Only,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Concat,
}

/// A compiled expression whose field names are bound to the columns of one table.
#[derive(Debug, Clone)]
pub enum Expr {
    Number(f64),
    Text(String),
    Field(usize),
    Aggregate {
        func: Func,
        distinct: bool,
        arg: Box<Expr>,
    },
    Negate(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
}

/// Compiles `text` (a leading `=` is allowed) against the fields of `table`, expanding
/// `$(name)` with `variable` first.
pub fn compile(
    text: &str,
    table: &Table,
    variable: &dyn Fn(&str) -> Option<String>,
) -> Result<Expr, String> {
    let expanded = expand(text, variable)?;
    let body = expanded.trim_start().strip_prefix('=').unwrap_or(&expanded);
    let tokens = tokenize(body)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        table,
        in_aggregate: false,
    };
    let expr = parser.concat()?;
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(format!("unexpected {token:?} in the expression"));
    }
    Ok(expr)
}

/// Replaces `$(name)` by the variable's definition (without its leading `=`).
fn expand(text: &str, variable: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = text.to_string();
    for _ in 0..MAX_EXPANSIONS {
        let Some(start) = out.find("$(") else {
            return Ok(out);
        };
        let Some(len) = out[start..].find(')') else {
            return Err("a $( expansion is not closed".into());
        };
        let name = out[start + 2..start + len].trim();
        let value = variable(name).ok_or_else(|| format!("the variable {name} does not exist"))?;
        let value = value
            .trim_start()
            .strip_prefix('=')
            .unwrap_or(&value)
            .to_string();
        out.replace_range(start..start + len + 1, &value);
    }
    Err("variables expand into each other without end".into())
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Text(String),
    Name(String),
    Quoted(String),
    Symbol(char),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let literal: String = chars[start..i].iter().collect();
            let n = literal
                .parse()
                .map_err(|_| format!("{literal} is not a number"))?;
            tokens.push(Token::Number(n));
        } else if c == '[' || c == '"' || c == '\'' {
            let close = if c == '[' { ']' } else { c };
            let start = i + 1;
            let len = chars[start..]
                .iter()
                .position(|&x| x == close)
                .ok_or_else(|| format!("{c} is not closed"))?;
            let inner: String = chars[start..start + len].iter().collect();
            tokens.push(if c == '\'' {
                Token::Text(inner)
            } else {
                Token::Quoted(inner)
            });
            i = start + len + 1;
        } else if c.is_alphabetic() || c == '_' || c == '%' || c == '@' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '%' | '@' | '.' | '#'))
            {
                i += 1;
            }
            tokens.push(Token::Name(chars[start..i].iter().collect()));
        } else if "+-*/&(),".contains(c) {
            tokens.push(Token::Symbol(c));
            i += 1;
        } else {
            return Err(format!("the character {c} is not understood"));
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    table: &'a Table,
    in_aggregate: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, symbol: char) -> bool {
        if self.peek() == Some(&Token::Symbol(symbol)) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn expect(&mut self, symbol: char) -> Result<(), String> {
        if self.eat(symbol) {
            return Ok(());
        }
        Err(format!("expected {symbol} in the expression"))
    }

    fn concat(&mut self) -> Result<Expr, String> {
        let mut left = self.additive()?;
        while self.eat('&') {
            let right = self.additive()?;
            left = Expr::Binary(Op::Concat, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        loop {
            let op = if self.eat('+') {
                Op::Add
            } else if self.eat('-') {
                Op::Sub
            } else {
                return Ok(left);
            };
            let right = self.term()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn term(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat('*') {
                Op::Mul
            } else if self.eat('/') {
                Op::Div
            } else {
                return Ok(left);
            };
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat('-') {
            return Ok(Expr::Negate(Box::new(self.unary()?)));
        }
        if self.eat('+') {
            return self.unary();
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or("the expression ends too early")?;
        self.pos += 1;
        match token {
            Token::Number(n) => Ok(Expr::Number(n)),
            Token::Text(s) => Ok(Expr::Text(s)),
            Token::Symbol('(') => {
                let inner = self.concat()?;
                self.expect(')')?;
                Ok(inner)
            }
            Token::Quoted(name) => self.field(&name),
            Token::Name(name) if self.eat('(') => self.call(&name),
            Token::Name(name) => self.field(&name),
            Token::Symbol(c) => Err(format!("unexpected {c} in the expression")),
        }
    }

    fn field(&self, name: &str) -> Result<Expr, String> {
        let col = self
            .table
            .column_index(name)
            .ok_or_else(|| format!("the field {name} does not exist"))?;
        let field = Expr::Field(col);
        if self.in_aggregate {
            return Ok(field);
        }
        Ok(Expr::Aggregate {
            func: Func::Only,
            distinct: false,
            arg: Box::new(field),
        })
    }

    fn call(&mut self, name: &str) -> Result<Expr, String> {
        let func = match name.to_ascii_lowercase().as_str() {
            "sum" => Func::Sum,
            "count" => Func::Count,
            "avg" => Func::Avg,
            "min" => Func::Min,
            "max" => Func::Max,
            "only" => Func::Only,
            _ => {
                return Err(format!(
                    "the function {name} is not supported by the test double"
                ));
            }
        };
        if self.in_aggregate {
            return Err(format!("nested aggregation in {name}() is not allowed"));
        }
        let distinct = matches!(self.peek(), Some(Token::Name(d)) if d.eq_ignore_ascii_case("distinct"))
            && !matches!(
                self.tokens.get(self.pos + 1),
                Some(Token::Symbol(')' | '(')) | None
            );
        if distinct {
            self.pos += 1;
        }
        self.in_aggregate = true;
        let arg = self.concat();
        self.in_aggregate = false;
        let arg = arg?;
        if self.eat(',') {
            return Err(format!(
                "{name}() with more than one argument is not supported"
            ));
        }
        self.expect(')')?;
        Ok(Expr::Aggregate {
            func,
            distinct,
            arg: Box::new(arg),
        })
    }
}

impl Expr {
    /// The value over the rows `rows` of `table` (positions within the slice).
    pub fn eval(&self, table: &Table, rows: &[usize]) -> Value {
        match self {
            Expr::Number(n) => Value::Number(*n),
            Expr::Text(s) => Value::text(s.as_str()),
            Expr::Field(col) => match rows.first() {
                Some(&r) => table.value(r, *col).clone(),
                None => Value::Null,
            },
            Expr::Aggregate {
                func,
                distinct,
                arg,
            } => aggregate(*func, *distinct, arg, table, rows),
            Expr::Negate(inner) => negate(inner.eval(table, rows)),
            Expr::Binary(op, l, r) => binary(*op, l.eval(table, rows), r.eval(table, rows)),
        }
    }

    fn eval_row(&self, table: &Table, row: usize) -> Value {
        match self {
            Expr::Field(col) => table.value(row, *col).clone(),
            Expr::Aggregate { .. } => Value::Null,
            other => other.eval(table, &[row]),
        }
    }
}

fn aggregate(func: Func, distinct: bool, arg: &Expr, table: &Table, rows: &[usize]) -> Value {
    let values = rows.iter().map(|&r| arg.eval_row(table, r));
    let values: Box<dyn Iterator<Item = Value>> = if distinct || func == Func::Only {
        let mut seen = HashSet::new();
        Box::new(values.filter(move |v| !v.is_null() && seen.insert(v.clone())))
    } else {
        Box::new(values.filter(|v| !v.is_null()))
    };
    match func {
        Func::Count => Value::Number(values.count() as f64),
        Func::Sum => Value::Number(values.filter_map(|v| v.as_number()).sum()),
        Func::Avg => {
            let (sum, n) = values
                .filter_map(|v| v.as_number())
                .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            if n == 0 {
                Value::Null
            } else {
                Value::Number(sum / n as f64)
            }
        }
        Func::Min => extreme(values, f64::min),
        Func::Max => extreme(values, f64::max),
        Func::Only => {
            let mut distinct = values.take(2);
            match (distinct.next(), distinct.next()) {
                (Some(v), None) => v,
                _ => Value::Null,
            }
        }
    }
}

fn extreme(values: impl Iterator<Item = Value>, pick: fn(f64, f64) -> f64) -> Value {
    values
        .filter_map(|v| v.as_number())
        .reduce(pick)
        .map_or(Value::Null, Value::Number)
}

fn negate(value: Value) -> Value {
    value.as_number().map_or(Value::Null, |n| Value::Number(-n))
}

fn binary(op: Op, left: Value, right: Value) -> Value {
    if op == Op::Concat {
        let text = format!("{}{}", value_text(&left), value_text(&right));
        return Value::text(text);
    }
    let (Some(a), Some(b)) = (left.as_number(), right.as_number()) else {
        return Value::Null;
    };
    let n = match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div if b == 0.0 => return Value::Null,
        Op::Div => a / b,
        Op::Concat => unreachable!("handled above"),
    };
    Value::Number(n)
}

/// A value's text the way the engine shows an unformatted result: texts as they are, numbers
/// with up to 14 significant digits.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Text(s) | Value::Dual(_, s) => s.to_string(),
        Value::Number(n) => general_number(*n),
    }
}

/// A number with at most 14 significant digits and no trailing zeros, as the engine writes
/// numbers that have no format.
pub fn general_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let rounded: f64 = format!("{n:.13e}").parse().unwrap_or(n);
    let rounded = if rounded == 0.0 { 0.0 } else { rounded };
    if rounded.fract() == 0.0 && rounded.abs() < 1e15 {
        return format!("{}", rounded as i64);
    }
    format!("{rounded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mad_core::{ColumnBuilder, Field, FieldKind, Schema};

    fn table() -> Table {
        let schema = Schema::new(vec![
            Field::new("Region", FieldKind::Text),
            Field::new("Sales", FieldKind::Number),
            Field::new("Order ID", FieldKind::Text),
        ]);
        let mut cols: Vec<ColumnBuilder> = (0..3).map(|_| ColumnBuilder::default()).collect();
        for (r, s, o) in [("East", 1.5, "a"), ("West", 2.0, "a"), ("East", 3.0, "b")] {
            cols[0].push(Value::text(r));
            cols[1].push(Value::Number(s));
            cols[2].push(Value::text(o));
        }
        Table::new(
            schema,
            cols.into_iter().map(ColumnBuilder::finish).collect(),
        )
        .unwrap()
    }

    fn eval(text: &str) -> Value {
        let t = table();
        let rows: Vec<usize> = (0..t.len()).collect();
        compile(text, &t, &|_| None).unwrap().eval(&t, &rows)
    }

    #[test]
    fn aggregations_follow_qlik() {
        assert_eq!(eval("=Sum([Sales])"), Value::Number(6.5));
        assert_eq!(eval("Count(DISTINCT [Order ID])"), Value::Number(2.0));
        assert_eq!(eval("count([Order ID])"), Value::Number(3.0));
        assert_eq!(eval("Max(Sales) - Min(Sales)"), Value::Number(1.5));
        assert_eq!(
            eval("Sum(Sales * 2) / Count(Sales)"),
            Value::Number(13.0 / 3.0)
        );
        assert_eq!(eval("Region"), Value::Null);
        assert_eq!(eval("Sum(Sales)/0"), Value::Null);
    }

    #[test]
    fn bad_expressions_are_refused() {
        let t = table();
        assert!(compile("Sum(Nope)", &t, &|_| None).is_err());
        assert!(compile("Sum(Sum(Sales))", &t, &|_| None).is_err());
        assert!(compile("Rank(Sales)", &t, &|_| None).is_err());
        assert!(compile("Sum(Sales", &t, &|_| None).is_err());
    }

    #[test]
    fn variables_expand() {
        let t = table();
        let rows: Vec<usize> = (0..t.len()).collect();
        let var = |name: &str| (name == "vSales").then(|| "=Sum(Sales)".to_string());
        let e = compile("$(vSales) * 2", &t, &var).unwrap();
        assert_eq!(e.eval(&t, &rows), Value::Number(13.0));
    }

    #[test]
    fn general_numbers_have_fourteen_digits() {
        assert_eq!(general_number(2297200.8603000003), "2297200.8603");
        assert_eq!(general_number(5.0), "5");
        assert_eq!(general_number(-0.25), "-0.25");
    }
}
