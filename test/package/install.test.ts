// The package as npm users get it: `npm pack` of this clone (dist/ as built by
// pretest), installed into an empty prefix, and driven from there only — the
// installed bin mounts the default tree, a device is created and removed
// through it, `mdevfs run` works, a driver outside the package imports
// 'mdevfs', and the public entry has what the docs promise.
import t from 'tap';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { REPO, run, startDaemon } from '../helpers/daemon.js';
import { readOnce } from '../helpers/sys.js';

const MTTY = 'devices/virtual/mtty/mtty';

// From `cwd`, and without the NODE_OPTIONS tap's processinfo adds to every child (which loads from the clone).
const inDirArgv = (cwd: string, argv: string[]) => [
  'env',
  '-u',
  'NODE_OPTIONS',
  'sh',
  '-c',
  'cd "$1" && shift && exec "$@"',
  'sh',
  cwd,
  ...argv,
];
const inDir = (cwd: string, argv: string[], timeoutMs = 60_000) => {
  const [file, ...args] = inDirArgv(cwd, argv);
  return run(file!, args, { timeoutMs });
};

if (!existsSync(path.join(REPO, 'dist/examples/samples.js'))) {
  t.fail('dist/ is not built (npm run build)');
} else {
  t.test('installed from the packed tarball', async t => {
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'mdevfs-package-'));
    t.teardown(() => fsp.rm(tmp, { recursive: true, force: true }));
    const prefix = path.join(tmp, 'prefix');
    const work = path.join(tmp, 'work');
    await fsp.mkdir(prefix);
    await fsp.mkdir(work);

    // --ignore-scripts: dist/ is pretest's; a rebuild here would rewrite it under parallel tests.
    const pack = await run('env', ['-u', 'NODE_OPTIONS', 'npm', 'pack', '--ignore-scripts', '--json', '--pack-destination', tmp], {
      timeoutMs: 120_000,
    });
    t.equal(pack.code, 0, pack.stderr);
    const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const shipped = info!.files.map(f => f.path);
    t.same(
      shipped.filter(f => f.endsWith('.map')),
      [],
      'no source maps (they would point at src/, which is not shipped)',
    );
    t.ok(shipped.includes('dist/examples/samples.js'), 'the sample drivers, compiled');

    const install = await run(
      'npm',
      ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', path.join(tmp, info!.filename)],
      { timeoutMs: 240_000 },
    );
    t.equal(install.code, 0, install.stderr);
    const bin = path.join(prefix, 'node_modules/.bin/mdevfs');
    const pkg = path.join(prefix, 'node_modules/mdevfs');

    t.test('mount the default tree, create and remove a device, unmount', async t => {
      const d = await startDaemon(t, {
        command: dir => inDirArgv(work, [bin, 'mount', dir]),
      });
      t.match(d.stdout, /\(profile modern, 3 parents\)/);
      const types = d.p(MTTY, 'mdev_supported_types');
      t.equal(await readOnce(path.join(types, 'mtty-2/name')), 'Dual port serial\n');
      const u = uuidv4();
      const create = await run('sh', ['-c', `echo ${u} > ${types}/mtty-2/create && cat ${d.p(MTTY, u, 'vendor/sample_mdev_dev')}`]);
      t.equal(create.stdout, `This is MDEV ${u}\n`, create.stderr);
      t.equal(await readOnce(path.join(types, 'mtty-2/available_instances')), '11\n');
      const remove = await run('sh', ['-c', `echo 1 > ${d.p('bus/mdev/devices', u, 'remove')} && ls ${d.p('bus/mdev/devices')}`]);
      t.equal(remove.code, 0, remove.stderr);
      t.equal(remove.stdout, '');
      t.same(await d.stop('SIGTERM'), { code: 0, signal: null }, d.stderr);
      t.match(d.stderr, /unmounted/);
    });

    t.test('mdevfs run -- true, and a command that reads /sys', async t => {
      const r = await inDir(work, [bin, 'run', '--', 'true']);
      t.equal(r.code, 0, r.stderr);
      const cat = await inDir(work, [bin, 'run', '--', 'cat', '/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-1/name']);
      t.equal(cat.stdout, 'Single port serial\n', cat.stderr);
    });

    t.test("drivers outside the package import 'mdevfs': TypeScript, JavaScript, a shipped example", async t => {
      // init fails on purpose, with mdevfs's own MdevError: its message shows the import worked.
      const body = (name: string) =>
        `import { MdevError, sharedPool } from 'mdevfs';\n` +
        `export default { name: '${name}', init() { throw new MdevError('ENOSPC', typeof sharedPool + ' ${name}'); } };\n`;
      await fsp.writeFile(path.join(work, 'drv.ts'), body('from-ts'));
      await fsp.writeFile(path.join(work, 'drv.mjs'), body('from-mjs'));
      for (const name of ['from-ts', 'from-mjs']) {
        const r = await inDir(work, [bin, 'run', '--driver', name === 'from-ts' ? './drv.ts' : './drv.mjs', '--', 'true']);
        t.equal(r.stderr, `mdevfs: driver ${name} failed to initialise: function ${name} (ENOSPC)\n`, name);
      }
      const vgpu = await inDir(work, [
        bin,
        'run',
        '--driver',
        path.join(pkg, 'examples/nvidia-vgpu.ts'),
        '--',
        'ls',
        '/sys/class/mdev_bus',
      ]);
      t.equal(vgpu.code, 0, vgpu.stderr);
      t.match(vgpu.stdout, /^0000:/, 'the example in TypeScript, compiled at load');
    });

    t.test('the public entry: config helpers and the schema', async t => {
      const script = [
        "import * as m from 'mdevfs';",
        "import { readFileSync } from 'node:fs';",
        "import { fileURLToPath } from 'node:url';",
        "const viaExports = fileURLToPath(import.meta.resolve('mdevfs/config-schema.json'));",
        'const schema = JSON.parse(readFileSync(m.configSchemaPath(), "utf8"));',
        'console.log(JSON.stringify({ same: viaExports === m.configSchemaPath(), draft: schema.$schema,',
        '  fns: ["MdevError", "loadConfigFile", "parseConfig", "compileConfig", "validateConfig", "ConfigError", "sharedPool", "perTypeMax", "ParentCapacity", "MdevCore"].filter(k => typeof m[k] !== "function") }));',
      ].join('\n');
      // Resolved as a user's own module would, from the prefix's node_modules.
      await fsp.writeFile(path.join(prefix, 'check.mjs'), script);
      const r = await inDir(prefix, [process.execPath, 'check.mjs']);
      t.equal(r.code, 0, r.stderr);
      t.same(JSON.parse(r.stdout), { same: true, draft: 'https://json-schema.org/draft/2020-12/schema', fns: [] });
    });

    t.test('the shipped types: a TypeScript plugin type-checks against the installed package alone', async t => {
      await fsp.writeFile(
        path.join(prefix, 'typed.ts'),
        [
          "import { MdevError, sharedPool, configSchemaPath, type ParentOps, type TypeConfig, type VendorPlugin } from 'mdevfs';",
          "const ops: Partial<ParentOps> = { driver: 'typed' };",
          "const plugin: VendorPlugin = { name: 'typed', init() { throw new MdevError('ENOSPC'); } };",
          'export const all = [ops, plugin, sharedPool, configSchemaPath()] as const;',
          'export type { TypeConfig };',
          '',
        ].join('\n'),
      );
      // The clone's tsc and @types/node only; skipLibCheck off, so every shipped .d.ts is checked.
      const tsconfig = {
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          typeRoots: [path.join(REPO, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['typed.ts'],
      };
      await fsp.writeFile(path.join(prefix, 'tsconfig.json'), JSON.stringify(tsconfig));
      const tsc = await inDir(prefix, [process.execPath, path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', '.']);
      t.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
    });

    // Last: it takes tsx away from the installation.
    t.test('the default tree needs no TypeScript compiler; a .ts driver then says what is missing', async t => {
      await fsp.rename(path.join(pkg, '../tsx'), path.join(tmp, 'tsx-away'));
      const r = await inDir(work, [bin, 'run', '--', 'cat', '/sys/class/mdev_bus/mdpy/mdev_supported_types/mdpy-vga/name']);
      t.equal(r.stdout, 'mdpy-vga\n', r.stderr);
      const ts = await inDir(work, [bin, 'run', '--driver', './drv.ts', '--', 'true']);
      t.match(
        ts.stderr,
        /^mdevfs: cannot load driver \.\/drv\.ts: cannot load the TypeScript loader \(tsx\): Cannot find package 'tsx'.*\n$/,
      );
    });
  });
}
