/**
 * The doc comments of src/protocol's schemas, read from their source: zod keeps no comments at
 * run time, and the JSON Schema documents should say what the TypeScript says, in its words.
 */
import { readFileSync } from 'node:fs';
import ts from 'typescript';

/** What the comments of one exported `const XSchema = z.object({...})` say. */
export interface SchemaDocs {
  /** The comment above the declaration. */
  description?: string;
  /** Comments above the properties of the object literal it is built from. */
  properties: Record<string, string>;
}

function commentOf(node: ts.Node): string | undefined {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  const text = docs.map((d) => ts.getTextOfJSDocComment(d.comment) ?? '').join('\n').trim();
  // One paragraph per comment: the source wraps lines for width, not for meaning.
  return text ? text.replace(/\s*\n\s*/g, ' ').replace(/\{@link\s+([^}\s]+)\s*\}/g, '`$1`') : undefined;
}

/** The first object literal handed to a call in this initializer (`z.object({...})`, `X.extend({...})`). */
function objectLiteralOf(init: ts.Expression): ts.ObjectLiteralExpression | undefined {
  if (ts.isObjectLiteralExpression(init)) return init;
  let found: ts.ObjectLiteralExpression | undefined;
  const visit = (node: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(node)) {
      const arg = node.arguments.find(ts.isObjectLiteralExpression);
      if (arg) { found = arg; return; }
    }
    ts.forEachChild(node, visit);
  };
  visit(init);
  return found;
}

/** Docs of every exported const of a source file, by its name (`WireTaskSchema`). */
export function schemaDocs(path: string): Map<string, SchemaDocs> {
  const sf = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const out = new Map<string, SchemaDocs>();
  // Spread shapes (`...JobOptionsSchema.shape`, `...AppendPartShape`): their comments, once every const is read.
  const spreads = new Map<string, string[]>();
  for (const stmt of sf.statements) {
    if (!ts.isVariableStatement(stmt) || !stmt.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
    const description = commentOf(stmt);
    for (const decl of stmt.declarationList.declarations) {
      if (!ts.isIdentifier(decl.name) || !decl.initializer) continue;
      const properties: Record<string, string> = {};
      const literal = objectLiteralOf(decl.initializer);
      for (const prop of literal?.properties ?? []) {
        if (ts.isSpreadAssignment(prop)) {
          const from = ts.isPropertyAccessExpression(prop.expression) ? prop.expression.expression : prop.expression;
          if (ts.isIdentifier(from)) spreads.set(decl.name.text, [...(spreads.get(decl.name.text) ?? []), from.text]);
          continue;
        }
        if (!ts.isPropertyAssignment(prop) || !ts.isIdentifier(prop.name)) continue;
        const text = commentOf(prop);
        if (text) properties[prop.name.text] = text;
      }
      out.set(decl.name.text, { ...(description ? { description } : {}), properties });
    }
  }
  for (const [name, froms] of spreads) {
    const docs = out.get(name)!;
    for (const from of froms) docs.properties = { ...out.get(from)?.properties, ...docs.properties };
  }
  return out;
}
