// ESLint over src/, test/ and examples/: typescript-eslint's type-aware
// recommended rules, typed through tsconfig.json (src/) and test/tsconfig.json
// (test/ and examples/). Layout is prettier's business (npm run format), not ESLint's.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'node_modules/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: ['./tsconfig.json', './test/tsconfig.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // tap's t.test() returns a promise that tap itself tracks: subtests are
      // queued and run in order whether or not the caller awaits them.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: '@tapjs/test', name: 'test' }] },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // A `let` that closures declared earlier read (run/inner.ts's child
      // process) cannot become a const at its one assignment.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Plugin results are Awaitable<T> (a value or a promise of one) by design;
      // Promise.all over them is how the core and the tests settle both kinds.
      '@typescript-eslint/await-thenable': ['error', { allowMixedPromiseArrays: true }],
      // Off: the code marks indexed accesses with `!` (xs[0]!, map.get(k)!) as
      // if noUncheckedIndexedAccess were on; the rule calls each one unnecessary.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Off: async functions without await are deliberate: they keep an async
      // signature (plugin ops, tap callbacks) and turn throws into rejections.
      '@typescript-eslint/require-await': 'off',
      // Off: plugin methods are read once into a local and called with
      // .call(owner, ...), and tests compare optional methods with undefined;
      // the rule flags both.
      '@typescript-eslint/unbound-method': 'off',
      // Off: kernfs walks its tree from `this` up the parents (let n = this;
      // n = n.parent); there is no closure capturing a `self`.
      '@typescript-eslint/no-this-alias': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Off in tests: they mutate parsed JSON (schema mutants, client reports)
      // through `any` on purpose.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Off in tests: fake plugins throw non-Error values ({ errno }, strings)
      // to check how the core maps what a plugin throws.
      '@typescript-eslint/only-throw-error': 'off',
    },
  },
  {
    // This file (plain JavaScript, in no tsconfig): no type information.
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
