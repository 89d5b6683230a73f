// Parse T-SQL batches with the T-SQL grammar of antlr4ts-sql (ANTLR's grammars-v4 TSqlParser):
// reads a JSON array of strings on stdin, writes a JSON array of the first syntax error of
// each (null when it parses). Usage: node check.js <node_modules folder>
"use strict";
const path = require("path");

const modules = process.argv[2];
const antlr4ts = require(path.join(modules, "antlr4ts"));
const { PredictionMode } = require(path.join(modules, "antlr4ts/atn/PredictionMode"));
const grammar = path.join(modules, "antlr4ts-sql/dist/src");
const { CaseChangingStream } = require(path.join(grammar, "models/CaseChangingStream"));
const { TSqlLexer } = require(path.join(grammar, "grammar-output/tsql/TSqlLexer"));
const { TSqlParser } = require(path.join(grammar, "grammar-output/tsql/TSqlParser"));

function parse(sql, mode) {
  const errors = [];
  const listener = {
    syntaxError: (_recognizer, _symbol, line, column, message) =>
      errors.push(`${line}:${column} ${message}`.slice(0, 200)),
  };
  const chars = new CaseChangingStream(new antlr4ts.ANTLRInputStream(sql), true);
  const lexer = new TSqlLexer(chars);
  lexer.removeErrorListeners();
  lexer.addErrorListener(listener);
  const parser = new TSqlParser(new antlr4ts.CommonTokenStream(lexer));
  parser.interpreter.setPredictionMode(mode);
  parser.removeErrorListeners();
  parser.addErrorListener(listener);
  parser.tsql_file();
  return errors.length ? errors[0] : null;
}

// SLL prediction is fast and exact when it succeeds; only a failure is parsed again with LL.
function check(sql) {
  return parse(sql, PredictionMode.SLL) === null ? null : parse(sql, PredictionMode.LL);
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const statements = JSON.parse(input);
  process.stdout.write(JSON.stringify(statements.map(check)));
});
