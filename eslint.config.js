import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        performance: 'readonly',
        queueMicrotask: 'readonly',
        structuredClone: 'readonly',
        document: 'readonly',
        window: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  // Floors (ARCHITECTURE.md "Floors"): protocol < frames < backends < server < redis, adapters, dashboard, metrics;
  // the client sits on protocol alone. A file never imports a folder on a higher floor; `npm run check:cycles`
  // (madge, type-only imports included) finds import cycles within a floor.
  ...floorRules({
    'src/protocol/**': [
      'frames',
      'backends',
      'server',
      'client',
      'redis',
      'adapters',
      'dashboard',
      'metrics',
    ],
    'src/frames/**': ['backends', 'server', 'client', 'redis', 'adapters', 'dashboard', 'metrics'],
    'src/backends/**': ['server', 'client', 'redis', 'adapters', 'dashboard', 'metrics'],
    'src/server/**': ['client', 'redis', 'adapters', 'dashboard', 'metrics'],
    'src/client/**': ['frames', 'backends', 'server', 'redis', 'adapters', 'dashboard', 'metrics'],
  }),
);

/** One `no-restricted-imports` rule per floor: relative imports of the named top-level folders of src/ fail. */
function floorRules(floors) {
  return Object.entries(floors).map(([files, above]) => ({
    files: [files],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: above.map((folder) => `**/../${folder}/**`),
              message: 'a lower floor imports a higher one (see ARCHITECTURE.md "Floors")',
            },
          ],
        },
      ],
    },
  }));
}
