// @ts-check
/**
 * Stryker ignorers (stryker.config.mjs `ignorers`). `error-messages`: the message argument of
 * `new QpError(code, message)` and of `new Error(message)` (and TypeError, RangeError) is
 * prose for people; the tests assert the error's code and where it is thrown, not its
 * wording, so mutating the wording would only count sentences. The code argument and every
 * condition that leads to the throw are still mutated.
 */
const PLAIN_ERRORS = new Set(['Error', 'TypeError', 'RangeError']);

/** @param {{ node: any, parentPath: { node: any } | null }} path a Babel NodePath */
function errorMessage(path) {
  const parent = path.parentPath;
  if (!parent || parent.node.type !== 'NewExpression' || parent.node.callee.type !== 'Identifier') return undefined;
  const i = parent.node.arguments.indexOf(/** @type {any} */ (path.node));
  const callee = parent.node.callee.name;
  if ((callee === 'QpError' && i === 1) || (PLAIN_ERRORS.has(callee) && i === 0))
    return 'an error message is prose: tests assert the error code, not its wording';
  return undefined;
}

export const strykerPlugins = [{ kind: 'Ignore', name: 'error-messages', value: { shouldIgnore: errorMessage } }];
