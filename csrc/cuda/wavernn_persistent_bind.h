// Python dict -> Params for the WaveRNN persistent kernel, shared by the CUDA module and the CPU
// emulator module. The Python wrapper (audiogen_fast/ops/wavernn_persistent.py) checks dtypes,
// devices and shapes; this checks the sizes the kernel relies on.
#pragma once
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "wavenet_persistent_bind.h"  // geti, getp, weight_bytes
#include "wavernn_persistent_params.h"

namespace agf {
namespace wrp {

namespace py = pybind11;
using wnp::geti;
using wnp::getp;

inline Params params_from_dict(const py::dict& d) {
    Params p{};
    p.B = geti(d, "B"); p.Tc = geti(d, "Tc"); p.R = geti(d, "R"); p.Rp = geti(d, "Rp");
    p.F = geti(d, "F"); p.Fp = geti(d, "Fp"); p.OUT = geti(d, "OUT"); p.OUTp = geti(d, "OUTp");
    p.mode = geti(d, "mode"); p.nz = geti(d, "nz"); p.n_mix = geti(d, "n_mix"); p.teacher = geti(d, "teacher");
    p.log_scale_min = d["log_scale_min"].cast<float>();
    p.M = geti(d, "M");
    auto pad_ok = [](int real, int pad) { return real >= 1 && pad >= real && pad % 8 == 0; };
    if (!(pad_ok(p.R, p.Rp) && pad_ok(p.F, p.Fp) && pad_ok(p.OUT, p.OUTp)))
        throw std::invalid_argument("wavernn_persistent: padded sizes must be multiples of 8 and >= the real sizes");
    if (p.B < 1 || p.Tc < 1 || p.M < 1 || p.M > MAX_STREAMS)
        throw std::invalid_argument("wavernn_persistent: need B, Tc >= 1 and 1 <= M <= 4");
    if (p.mode < 0 || p.mode > 2) throw std::invalid_argument("wavernn_persistent: unknown output mode");
    if (p.mode == 2 && p.OUT != 2) throw std::invalid_argument("wavernn_persistent: a Gaussian output has OUT = 2");
    if (p.mode == 1 && (p.n_mix < 1 || 3 * p.n_mix != p.OUT)) throw std::invalid_argument("wavernn_persistent: OUT must be 3 * n_mix");
    if (p.mode == 0 && p.OUT < 2) throw std::invalid_argument("wavernn_persistent: need at least 2 classes");
    p.nchains = (p.B + p.M - 1) / p.M;
    p.w_ih1 = getp<const void*>(d, "w_ih1"); p.w_hh1 = getp<const void*>(d, "w_hh1");
    p.w_ih2 = getp<const void*>(d, "w_ih2"); p.w_hh2 = getp<const void*>(d, "w_hh2");
    p.w_f1 = getp<const void*>(d, "w_f1"); p.w_f2 = getp<const void*>(d, "w_f2"); p.w_f3 = getp<const void*>(d, "w_f3");
    p.b_ih1 = getp<const float*>(d, "b_ih1"); p.b_hh1 = getp<const float*>(d, "b_hh1");
    p.b_hh2 = getp<const float*>(d, "b_hh2"); p.b_f3 = getp<const float*>(d, "b_f3"); p.w_ix = getp<const float*>(d, "w_ix");
    p.pre_I = getp<const float*>(d, "pre_I"); p.pre_2 = getp<const float*>(d, "pre_2");
    p.pre_f1 = getp<const float*>(d, "pre_f1"); p.pre_f2 = getp<const float*>(d, "pre_f2");
    p.h1 = getp<float*>(d, "h1"); p.h2 = getp<float*>(d, "h2"); p.x = getp<float*>(d, "x");
    p.noise = getp<const float*>(d, "noise"); p.teacher_in = getp<const float*>(d, "teacher_in");
    p.out = getp<float*>(d, "out"); p.cls = getp<long long*>(d, "cls"); p.logits = getp<float*>(d, "logits");
    p.xbuf = getp<float*>(d, "xbuf"); p.flags = getp<unsigned long long*>(d, "flags");
    p.tag = d["tag"].cast<unsigned long long>();
    p.prof = d.contains("prof") ? getp<long long*>(d, "prof") : nullptr;
    return p;
}

// the plan as a dict: nblk, wsmem, smem (bytes per block), buffer sizes
inline py::dict plan_dict(Params& p, size_t budget, int wtype, int min_blocks, int max_blocks) {
    if (max_blocks < 1) throw std::invalid_argument("wavernn_persistent: max_blocks must be >= 1");
    const size_t smem = plan(p, budget, wnp::weight_bytes(wtype), min_blocks, max_blocks);
    py::dict out;
    out["nblk"] = p.nblk;
    out["wsmem"] = p.wsmem;
    out["smem"] = smem;
    out["nchains"] = p.nchains;
    out["xbuf_floats"] = static_cast<size_t>(p.nchains) * 5 * p.M * stage_width(p);
    out["flag_words"] = static_cast<size_t>(p.nchains) * p.nblk * FLAG_STRIDE;
    return out;
}

}  // namespace wrp
}  // namespace agf
