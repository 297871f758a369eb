// Package trend forecasts when a series will cross a threshold: the math
// behind the alert engine's forecast rules (预测预警), which warn before
// soil moisture reaches the wilting point, a gauge its warning level, or
// dissolved oxygen hypoxia.
//
// A [Window] keeps one series over a span as at most B equal buckets
// (count, sum, mean time), in O(1) per reading and bounded memory, and
// is persisted as JSON. A [Fitter] fits the closed buckets' means with a
// Theil–Sen line and tests the trend with Mann–Kendall; [Fit.Crossing]
// says how long until the line reaches a target. [FormatDuration] words
// the answer in English and Chinese.
//
// # Method
//
// The formulas are the textbook ones, used as written there and not
// re-derived here:
//
//   - Slope: the median of the pairwise slopes (y_j − y_i)/(t_j − t_i)
//     over all pairs i < j (Theil 1950; Sen 1968).
//   - Intercept: the median of y_i − slope·t_i (Conover 1980, as used
//     with the Theil–Sen line in Helsel et al. 2020).
//   - Trend test: Mann–Kendall S = Σ_{i<j} sign(y_j − y_i) (Mann 1945;
//     Kendall 1975), with variance under no trend, corrected for ties,
//     Var(S) = [n(n−1)(2n+5) − Σ_g t_g(t_g−1)(2t_g+5)] / 18, where t_g
//     is the size of the g-th group of equal values (Kendall 1975); the
//     score Z = (S−1)/√Var(S) for S > 0, (S+1)/√Var(S) for S < 0, 0
//     otherwise (continuity correction), and the two-sided p-value
//     2·(1 − Φ(|Z|)) from the normal approximation (Helsel et al. 2020,
//     ch. 12, which also presents the pair as the standard nonparametric
//     trend analysis for water data).
//
// The normal approximation is the usual large-sample one; below about
// ten points it is rough (the exact distribution of S is discrete), and
// with fewer than five points no trend reaches p ≤ 0.05 at all, so a
// caller should ask for ten or more points. The test assumes independent
// points: serial correlation (a diurnal cycle, a slow drift in the noise)
// makes the p-value too small; bucketing and the residual guard only
// soften that.
//
// # Guard rails
//
// Fit gives no forecast from fewer closed buckets than asked, from a trend
// whose p-value is above alpha, or from values that overflow. It reports
// the residuals' MAD, so a caller can refuse a line whose noise dwarfs
// the distance to its target, and whether the newest three buckets have
// all left the line on one side (Fit.Departed): a robust line ignores a
// turn or a step until it fills about 29 % of the window (half, for the
// intercept), and Crossing refuses to forecast from a line the series has
// left for the safe side.
//
// References:
//
//   - Conover, W.J. (1980). Practical Nonparametric Statistics, 2nd ed.
//     Wiley.
//   - Helsel, D.R., Hirsch, R.M., Ryberg, K.R., Archfield, S.A., and
//     Gilroy, E.J. (2020). Statistical Methods in Water Resources. USGS
//     Techniques and Methods 4-A3.
//   - Kendall, M.G. (1975). Rank Correlation Methods, 4th ed. Griffin.
//   - Mann, H.B. (1945). Nonparametric tests against trend. Econometrica
//     13(3), 245–259.
//   - Sen, P.K. (1968). Estimates of the regression coefficient based on
//     Kendall's tau. JASA 63(324), 1379–1389.
//   - Theil, H. (1950). A rank-invariant method of linear and polynomial
//     regression analysis, I–III. Proc. KNAW 53.
//
// # Cost
//
// Add is O(1) for in-order readings (opening a bucket moves at most B
// small structs). Fit is O(B²) in the pairwise slopes and the S
// statistic, with medians by quickselect (expected linear time), and
// allocates nothing once its Fitter's scratch has grown; the engine fits
// only when a bucket closes. See docs/forecast.md.
package trend
