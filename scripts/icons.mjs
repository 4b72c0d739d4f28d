#!/usr/bin/env node
// Renders the app icons from resources/icon.svg. The results are committed, so only a changed icon needs this:
//
//   node scripts/icons.mjs
//
// Writes resources/icons/NxN.png (the Linux icon set, and the window icon), resources/icon.ico (Windows,
// installer included) and resources/icon.icns (macOS). Uses Debian's tools rather than an npm package for
// the raster work: rsvg-convert (librsvg2-bin) draws the SVG, ImageMagick writes the .ico (BMP entries up
// to 128 px, PNG at 256 as Windows expects) and png2icns (icnsutils) the .icns:
//
//   apt-get install -y librsvg2-bin imagemagick icnsutils
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const resources = fileURLToPath(new URL('../resources/', import.meta.url));
const svg = path.join(resources, 'icon.svg');
const iconsDir = path.join(resources, 'icons');
const PNG_SIZES = [16, 24, 32, 48, 64, 128, 256, 512, 1024];
const ICO_SIZES = [16, 24, 32, 48, 64, 128, 256];
// png2icns knows these sizes only.
const ICNS_SIZES = [16, 32, 128, 256, 512, 1024];

function run(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) throw new Error(`${command} could not run (${result.error.message}); see the top of this script`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}

/** ImageMagick 7 calls itself `magick`, 6 `convert`; a `convert` that is not ImageMagick is skipped. */
function imageMagick() {
  for (const candidate of ['magick', 'convert', '/usr/bin/convert']) {
    const result = spawnSync(candidate, ['-version'], { encoding: 'utf8' });
    if (result.status === 0 && /Version: ImageMagick/.test(result.stdout)) return candidate;
  }
  throw new Error('ImageMagick is not installed (apt-get install -y imagemagick)');
}

const png = (size) => path.join(iconsDir, `${size}x${size}.png`);

mkdirSync(iconsDir, { recursive: true });
for (const size of PNG_SIZES) run('rsvg-convert', ['--width', String(size), '--height', String(size), svg, '--output', png(size)]);
run(imageMagick(), [...ICO_SIZES.map(png), path.join(resources, 'icon.ico')]);
run('png2icns', [path.join(resources, 'icon.icns'), ...ICNS_SIZES.map(png)]);
console.log(`wrote ${PNG_SIZES.length} PNGs, icon.ico and icon.icns under ${resources}`);
