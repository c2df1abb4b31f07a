//! A small subset of Qlik's expression language, evaluated over a table: aggregations
//! (`Sum`, `Count`, `Count(DISTINCT ...)`, `Avg`, `Min`, `Max`, `Only`) of row expressions
//! built from field references (`[Order Date]` or `Sales`), numbers, strings and `+ - * /`.
//!
//! File sources use it to fill placeholders such as `{total}` = `Sum([Sales])`; it is not a
//! Qlik engine: set analysis, dollar expansion and the other functions are `Unsupported`.

use std::collections::HashSet;

use crate::error::{Error, ErrorKind, Result};
use crate::table::Table;
use crate::value::Value;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    Text(String),
    Field(String),
    Negate(Box<Expr>),
    Binary(Box<Expr>, Op, Box<Expr>),
    Aggregate {
        function: Function,
        distinct: bool,
        arg: Box<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Sum,
    Count,
    Avg,
    Min,
    Max,
    Only,
}

impl Expr {
    /// Parses an expression; a leading `=` is allowed.
    pub fn parse(text: &str) -> Result<Expr> {
        let body = text.trim().strip_prefix('=').unwrap_or(text.trim());
        let tokens = tokenize(body).map_err(|m| parse_error(text, m))?;
        let mut parser = Parser { tokens, pos: 0 };
        let expr = parser.expr().map_err(|m| parse_error(text, m))?;
        if parser.pos != parser.tokens.len() {
            return Err(parse_error(
                text,
                "unexpected text after the expression".into(),
            ));
        }
        Ok(expr)
    }

    /// The field names the expression reads.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.visit_fields(&mut out);
        out
    }

    fn visit_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Field(f) if !out.contains(&f.as_str()) => out.push(f),
            Expr::Negate(e) | Expr::Aggregate { arg: e, .. } => e.visit_fields(out),
            Expr::Binary(a, _, b) => {
                a.visit_fields(out);
                b.visit_fields(out);
            }
            _ => {}
        }
    }

    /// Evaluates the expression over all rows of `table`. A field outside an aggregation
    /// means `Only(field)`: its one value, or null when the rows hold several.
    pub fn evaluate(&self, table: &Table) -> Result<Value> {
        match self {
            Expr::Aggregate {
                function,
                distinct,
                arg,
            } => aggregate(*function, *distinct, arg, table),
            Expr::Field(_) => aggregate(Function::Only, false, self, table),
            Expr::Number(n) => Ok(Value::Number(*n)),
            Expr::Text(t) => Ok(Value::text(t.as_str())),
            Expr::Negate(e) => Ok(negate(e.evaluate(table)?)),
            Expr::Binary(a, op, b) => Ok(arithmetic(&a.evaluate(table)?, *op, &b.evaluate(table)?)),
        }
    }

    fn evaluate_row(
        &self,
        table: &Table,
        row: usize,
        columns: &[(String, usize)],
    ) -> Result<Value> {
        match self {
            Expr::Field(f) => {
                let col = columns.iter().find(|(n, _)| n == f).map(|(_, c)| *c);
                Ok(table
                    .value(row, col.expect("fields resolved before rows"))
                    .clone())
            }
            Expr::Number(n) => Ok(Value::Number(*n)),
            Expr::Text(t) => Ok(Value::text(t.as_str())),
            Expr::Negate(e) => Ok(negate(e.evaluate_row(table, row, columns)?)),
            Expr::Binary(a, op, b) => Ok(arithmetic(
                &a.evaluate_row(table, row, columns)?,
                *op,
                &b.evaluate_row(table, row, columns)?,
            )),
            Expr::Aggregate { .. } => Err(Error::new(
                ErrorKind::Unsupported,
                "an aggregation inside an aggregation needs the Aggr function, which is not supported",
            )),
        }
    }
}

fn parse_error(text: &str, message: String) -> Error {
    Error::invalid_config(format!("the expression \"{text}\": {message}"))
}

fn negate(v: Value) -> Value {
    match v.as_number() {
        Some(n) => Value::Number(-n),
        None => Value::Null,
    }
}

fn arithmetic(a: &Value, op: Op, b: &Value) -> Value {
    let (Some(x), Some(y)) = (a.as_number(), b.as_number()) else {
        return Value::Null;
    };
    let r = match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div if y == 0.0 => return Value::Null,
        Op::Div => x / y,
    };
    Value::Number(r)
}

fn aggregate(function: Function, distinct: bool, arg: &Expr, table: &Table) -> Result<Value> {
    let columns = arg
        .fields()
        .into_iter()
        .map(|f| Ok((f.to_string(), table.require_column(f)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut seen: HashSet<Value> = HashSet::new();
    let (mut sum, mut count, mut min, mut max) = (0.0, 0usize, f64::INFINITY, f64::NEG_INFINITY);
    let mut only: Option<Value> = None;
    let mut several = false;
    for row in 0..table.len() {
        let v = arg.evaluate_row(table, row, &columns)?;
        if v.is_null() || (distinct && !seen.insert(v.clone())) {
            continue;
        }
        match function {
            Function::Count => count += 1,
            Function::Only => match &only {
                None => only = Some(v),
                Some(o) if *o != v => several = true,
                Some(_) => {}
            },
            _ => {
                if let Some(n) = v.as_number() {
                    sum += n;
                    count += 1;
                    min = min.min(n);
                    max = max.max(n);
                }
            }
        }
    }
    let number = |n: f64| Value::Number(n);
    Ok(match function {
        Function::Sum => number(sum),
        Function::Count => number(count as f64),
        Function::Avg if count > 0 => number(sum / count as f64),
        Function::Min if count > 0 => number(min),
        Function::Max if count > 0 => number(max),
        Function::Only if !several => only.unwrap_or_default(),
        _ => Value::Null,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Text(String),
    Name(String),
    Bracketed(String),
    Symbol(char),
}

fn tokenize(text: &str) -> std::result::Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '[' {
            let end = chars[i..]
                .iter()
                .position(|&x| x == ']')
                .ok_or("unclosed '['")?
                + i;
            tokens.push(Token::Bracketed(chars[i + 1..end].iter().collect()));
            i = end + 1;
        } else if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .ok_or("unclosed quote")?
                + i
                + 1;
            tokens.push(Token::Text(chars[i + 1..end].iter().collect()));
            i = end + 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let end = chars[i..]
                .iter()
                .position(|x| !(x.is_ascii_digit() || *x == '.'))
                .map_or(chars.len(), |e| e + i);
            let s: String = chars[i..end].iter().collect();
            tokens.push(Token::Number(
                s.parse().map_err(|_| format!("bad number '{s}'"))?,
            ));
            i = end;
        } else if c.is_alphabetic() || c == '_' {
            let end = chars[i..]
                .iter()
                .position(|x| !(x.is_alphanumeric() || *x == '_' || *x == '.'))
                .map_or(chars.len(), |e| e + i);
            tokens.push(Token::Name(chars[i..end].iter().collect()));
            i = end;
        } else if "+-*/(),".contains(c) {
            tokens.push(Token::Symbol(c));
            i += 1;
        } else {
            return Err(format!("unexpected character '{c}'"));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
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

    fn expr(&mut self) -> std::result::Result<Expr, String> {
        let mut left = self.term()?;
        loop {
            let op = if self.eat('+') {
                Op::Add
            } else if self.eat('-') {
                Op::Sub
            } else {
                return Ok(left);
            };
            left = Expr::Binary(Box::new(left), op, Box::new(self.term()?));
        }
    }

    fn term(&mut self) -> std::result::Result<Expr, String> {
        let mut left = self.factor()?;
        loop {
            let op = if self.eat('*') {
                Op::Mul
            } else if self.eat('/') {
                Op::Div
            } else {
                return Ok(left);
            };
            left = Expr::Binary(Box::new(left), op, Box::new(self.factor()?));
        }
    }

    fn factor(&mut self) -> std::result::Result<Expr, String> {
        if self.eat('-') {
            return Ok(Expr::Negate(Box::new(self.factor()?)));
        }
        if self.eat('(') {
            let inner = self.expr()?;
            return if self.eat(')') {
                Ok(inner)
            } else {
                Err("missing ')'".into())
            };
        }
        let token = self
            .peek()
            .cloned()
            .ok_or("the expression ends too early")?;
        self.pos += 1;
        match token {
            Token::Number(n) => Ok(Expr::Number(n)),
            Token::Text(t) => Ok(Expr::Text(t)),
            Token::Bracketed(f) => Ok(Expr::Field(f)),
            Token::Name(name) if self.eat('(') => self.call(&name),
            Token::Name(name) => Ok(Expr::Field(name)),
            Token::Symbol(c) => Err(format!("unexpected '{c}'")),
        }
    }

    fn call(&mut self, name: &str) -> std::result::Result<Expr, String> {
        let function = match name.to_ascii_lowercase().as_str() {
            "sum" => Function::Sum,
            "count" => Function::Count,
            "avg" => Function::Avg,
            "min" => Function::Min,
            "max" => Function::Max,
            "only" => Function::Only,
            _ => return Err(format!("the function {name}() is not supported")),
        };
        let distinct =
            matches!(self.peek(), Some(Token::Name(n)) if n.eq_ignore_ascii_case("distinct"));
        if distinct {
            self.pos += 1;
        }
        let arg = self.expr()?;
        if !self.eat(')') {
            return Err(format!("missing ')' after the argument of {name}()"));
        }
        Ok(Expr::Aggregate {
            function,
            distinct,
            arg: Box::new(arg),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ColumnBuilder;
    use crate::value::{Field, FieldKind, Schema};

    fn table() -> Table {
        let schema = Schema::new(vec![
            Field::new("Order ID", FieldKind::Text),
            Field::new("Sales", FieldKind::Number),
            Field::new("Quantity", FieldKind::Integer),
        ]);
        let mut cols: Vec<ColumnBuilder> = (0..3).map(|_| ColumnBuilder::default()).collect();
        for (o, s, q) in [("A", 10.0, 1.0), ("A", 5.0, 2.0), ("B", 2.5, 4.0)] {
            cols[0].push(Value::text(o));
            cols[1].push(Value::Number(s));
            cols[2].push(Value::Number(q));
        }
        Table::new(
            schema,
            cols.into_iter().map(ColumnBuilder::finish).collect(),
        )
        .unwrap()
    }

    fn eval(text: &str) -> Value {
        Expr::parse(text).unwrap().evaluate(&table()).unwrap()
    }

    #[test]
    fn aggregations() {
        assert_eq!(eval("=Sum([Sales])"), Value::Number(17.5));
        assert_eq!(eval("Count(DISTINCT [Order ID])"), Value::Number(2.0));
        assert_eq!(eval("Count([Order ID])"), Value::Number(3.0));
        assert_eq!(eval("Sum(Sales * Quantity)"), Value::Number(30.0));
        assert_eq!(eval("Sum(Sales) / Count(Sales)"), eval("Avg(Sales)"));
        assert_eq!(eval("Max(Sales) - Min(Sales)"), Value::Number(7.5));
        assert_eq!(eval("-(2 + 3) * 2"), Value::Number(-10.0));
        assert_eq!(eval("[Order ID]"), Value::Null);
        assert_eq!(eval("'text'"), Value::text("text"));
        assert_eq!(eval("Sum(Sales) / 0"), Value::Null);
    }

    #[test]
    fn errors_name_the_problem() {
        let err = Expr::parse("Sum([Sales]").unwrap_err();
        assert!(err.to_string().contains("missing ')'"), "{err}");
        let err = Expr::parse("Aggr(Sum(Sales), Region)").unwrap_err();
        assert!(err.to_string().contains("Aggr"), "{err}");
        let err = Expr::parse("Sum(Revenue)")
            .unwrap()
            .evaluate(&table())
            .unwrap_err();
        assert!(err.to_string().contains("'Revenue'"), "{err}");
    }
}
