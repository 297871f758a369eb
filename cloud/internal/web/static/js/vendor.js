// The vendored libraries (static/vendor/, see its README.md), loaded as
// classic scripts before the modules; taken here from window so the other
// modules import them by name.
export const L = window.L;
export const uPlot = window.uPlot;
export const topojson = window.topojson;
