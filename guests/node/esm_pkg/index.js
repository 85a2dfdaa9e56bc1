// An ES module in a .js file: package.json says "type": "module".
import { helper } from './lib.js';

export const handler = async (event) => ({ style: 'esm-package', value: helper(event.x || 0) });
