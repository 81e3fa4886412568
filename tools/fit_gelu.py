#!/usr/bin/env python3
"""Fits the polynomial pieces of the accurate GELU in include/tformer/simd/activation.hpp.

Developer tool (numpy, mpmath): prints the float32 coefficients (hex) that activation.hpp embeds.
The target is H(x) = exp(x^2/2) * x * erfc(x/sqrt2) / 2 and erf(sqrt(w)/sqrt2)/(2 sqrt(w)), evaluated
with mpmath at 50 digits; each piece is a relative least-squares fit on Chebyshev nodes.
activation.hpp uses: Q of degree 6, H on [0.7, 3] of degree 11 (in x), H on [3, 16] of degree 8
(in 1/x); the other degrees are printed for comparison.

    python3 tools/fit_gelu.py
"""
import numpy as np, mpmath as mp
mp.mp.dps = 50
f32 = np.float32
def H(x):
  x = mp.mpf(x); return mp.exp(x*x/2)*x*mp.erfc(x/mp.sqrt(2))/2
def Q(w):
  if w == 0: return 1/mp.sqrt(2*mp.pi)
  x = mp.sqrt(mp.mpf(w)); return mp.erf(x/mp.sqrt(2))/(2*x)
def fit_greedy(svals, yvals, deg):
  V = np.vander(svals, deg+1, increasing=True); w = 1/np.abs(yvals); fixed = []
  for k in range(deg+1):
    rhs = yvals - (V[:, :k] @ np.array(fixed) if k else 0)
    c, *_ = np.linalg.lstsq(V[:, k:]*w[:,None], rhs*w, rcond=None)
    if k == 0:
      hi = f32(c[0]); lo = f32(c[0]-float(hi)); fixed.append(float(hi)+float(lo))
    else: fixed.append(float(f32(c[0])))
  return fixed
def hexs(c): return ", ".join("0x%08x" % np.array(f32(v)).view(np.uint32) for v in c)
def split(c0): hi=f32(c0); lo=f32(c0-float(hi)); return hi, lo
def report(name, c, err, extra=""):
  hi, lo = split(c[0])
  print(f"{name}: approx err {err:.3f} units 2^-24 {extra}")
  print(f"  c0 = {hexs([hi])} + {hexs([lo])}")
  print(f"  c1.. = {hexs(c[1:])}")
def piece(xlo, xhi, deg, var, n=3000):
  lo, hi = (xlo, xhi) if var=='x' else (1/xhi, 1/xlo)
  alpha = f32(2/(hi-lo)); beta = f32(-(hi+lo)/(hi-lo))
  k = np.arange(n); sn = np.cos(np.pi*(k+0.5)/n)
  t = (sn - float(beta))/float(alpha); s = float(alpha)*t + float(beta)
  y = np.array([float(H(v if var=='x' else 1/v)) for v in t])
  c = fit_greedy(s, y, deg)
  ss = np.linspace(-1,1,4001); tt = (ss-float(beta))/float(alpha)
  ref = np.array([float(H(v if var=='x' else 1/v)) for v in tt])
  got = np.polynomial.polynomial.polyval(ss, np.array(c))
  report(f"H [{xlo},{xhi}] deg {deg} in {var}", c, np.max(np.abs(got-ref)/ref)/2**-24, "alpha,beta " + hexs([alpha,beta]))
def small(xmax, deg, n=2000):
  wmax = xmax*xmax; k = np.arange(n); w = wmax*(1+np.cos(np.pi*(k+0.5)/n))/2
  y = np.array([float(Q(v)) for v in w]); c = fit_greedy(w, y, deg)
  ww = np.linspace(0, wmax, 4001); ref = np.array([float(Q(v)) for v in ww])
  got = np.polynomial.polynomial.polyval(ww, np.array(c))
  report(f"Q |x|<{xmax} deg {deg}", c, np.max(np.abs(got-ref)/ref)/2**-24)
for d in [6,7]: small(0.7, d)
for d in [10,11,12]: piece(0.7,3,d,'x')
for d in [8,9,10]: piece(3,16,d,'v')
