// The browser bundle of the Uppy test: @uppy/core and @uppy/tus from node_modules, bundled by
// esbuild into one file the test's page server serves (the machine running the tests needs no CDN).
import Uppy from '@uppy/core';
import Tus from '@uppy/tus';

window.Uppy = Uppy;
window.UppyTus = Tus;
