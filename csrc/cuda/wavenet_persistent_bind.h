// Python dict -> Params for the WaveNet persistent kernel, shared by the CUDA module
// (bindings_cuda.cpp) and the CPU emulator module (cuda_emu_bindings.cpp). The Python wrapper
// (audiogen_fast/ops/wavenet_persistent.py) checks dtypes, devices and shapes; this checks the
// sizes the kernel relies on, so a bad call raises instead of reading out of bounds.
#pragma once
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "wavenet_persistent_params.h"

namespace agf {
namespace wnp {

namespace py = pybind11;

inline int geti(const py::dict& d, const char* k) { return d[k].cast<int>(); }
template <class T>
inline T getp(const py::dict& d, const char* k) {
    return reinterpret_cast<T>(d[k].cast<std::uintptr_t>());
}

// Fills everything but the plan; wt: bytes per stored weight (4 or 2).
inline Params params_from_dict(const py::dict& d) {
    Params p{};
    p.B = geti(d, "B"); p.Tc = geti(d, "Tc"); p.L = geti(d, "L"); p.K = geti(d, "K");
    p.R = geti(d, "R"); p.Rp = geti(d, "Rp"); p.G2 = geti(d, "G2"); p.G2p = geti(d, "G2p");
    p.S = geti(d, "S"); p.Sp = geti(d, "Sp"); p.H = geti(d, "H"); p.Hp = geti(d, "Hp");
    p.OUT = geti(d, "OUT"); p.OUTp = geti(d, "OUTp"); p.IN = geti(d, "IN");
    p.mode = geti(d, "mode"); p.nz = geti(d, "nz"); p.n_mix = geti(d, "n_mix"); p.teacher = geti(d, "teacher");
    p.hist_rows = geti(d, "hist_rows"); p.t0 = d["t0"].cast<long long>();
    p.skip_scale = d["skip_scale"].cast<float>(); p.log_scale_min = d["log_scale_min"].cast<float>();
    p.M = geti(d, "M");
    p.dsmem = d.contains("dsmem") ? geti(d, "dsmem") : 0;
    p.pack = d.contains("pack") ? geti(d, "pack") : 0;
    p.shapes = d.contains("shapes") ? geti(d, "shapes") : 1;
    if (d.contains("blk_lo") && !d["blk_lo"].is_none()) {  // a fixed layer partition
        std::vector<int> lo = d["blk_lo"].cast<std::vector<int>>();
        const int nb = static_cast<int>(lo.size()) - 1;
        if (nb < 1 || nb > MAX_BLOCKS || lo[0] != 0 || lo[nb] != p.L)
            throw std::invalid_argument("wavenet_persistent: blk_lo must run from 0 to L over at most 64 blocks");
        for (int b = 0; b < nb; ++b)
            if (lo[b + 1] <= lo[b]) throw std::invalid_argument("wavenet_persistent: blk_lo must increase");
        for (int b = 0; b <= nb; ++b) p.blk_lo[b] = lo[b];
        p.nblk = nb;
        p.fixed = 1;
    }
    if (p.pack < 0 || p.pack > 2) throw std::invalid_argument("wavenet_persistent: pack must be 0, 1 or 2");
    auto pad_ok = [](int real, int pad) { return real >= 1 && pad >= real && pad % 8 == 0; };
    if (!(pad_ok(p.R, p.Rp) && pad_ok(p.G2, p.G2p) && pad_ok(p.S, p.Sp) && pad_ok(p.H, p.Hp) && pad_ok(p.OUT, p.OUTp)))
        throw std::invalid_argument("wavenet_persistent: padded sizes must be multiples of 8 and >= the real sizes");
    if (p.L < 1 || p.L > MAX_LAYERS) throw std::invalid_argument("wavenet_persistent: layers must be in [1, 64]");
    if (p.K != 2 && p.K != 3) throw std::invalid_argument("wavenet_persistent: kernel size must be 2 or 3");
    if (p.B < 1 || p.Tc < 1 || p.M < 1 || p.M > MAX_STREAMS)
        throw std::invalid_argument("wavenet_persistent: need B, Tc >= 1 and 1 <= M <= 16");
    if (p.mode < 0 || p.mode > 2) throw std::invalid_argument("wavenet_persistent: unknown output mode");
    if (p.mode == 1 && (p.n_mix < 1 || 3 * p.n_mix != p.OUT)) throw std::invalid_argument("wavenet_persistent: OUT must be 3 * n_mix");
    if (p.mode == 0 && p.IN != p.OUT) throw std::invalid_argument("wavenet_persistent: mu-law needs IN == OUT");
    std::vector<int> dil = d["dil"].cast<std::vector<int>>(), hoff = d["hoff"].cast<std::vector<int>>();
    if (static_cast<int>(dil.size()) != p.L || static_cast<int>(hoff.size()) != p.L)
        throw std::invalid_argument("wavenet_persistent: dil and hoff need one entry per layer");
    for (int l = 0; l < p.L; ++l) {
        if (dil[l] < 1 || hoff[l] < 0 || hoff[l] + (p.K - 1) * dil[l] > p.hist_rows)
            throw std::invalid_argument("wavenet_persistent: ring buffer layout out of range at layer " + std::to_string(l));
        p.dil[l] = dil[l];
        p.hoff[l] = hoff[l];
    }
    p.nchains = (p.B + p.M - 1) / p.M;
    p.wg = getp<const void*>(d, "wg"); p.wos = getp<const void*>(d, "wos"); p.bos = getp<const float*>(d, "bos");
    p.w1 = getp<const void*>(d, "w1"); p.b1 = getp<const float*>(d, "b1");
    p.w2 = getp<const void*>(d, "w2"); p.b2 = getp<const float*>(d, "b2");
    p.emb = getp<const float*>(d, "emb"); p.emb_b = getp<const float*>(d, "emb_b");
    p.cond = getp<const float*>(d, "cond"); p.hist = getp<float*>(d, "hist"); p.x = getp<float*>(d, "x");
    p.noise = getp<const float*>(d, "noise"); p.teacher_in = getp<const float*>(d, "teacher_in");
    p.out = getp<float*>(d, "out"); p.logits = getp<float*>(d, "logits");
    p.mail = getp<float*>(d, "mail"); p.flags = getp<unsigned long long*>(d, "flags");
    p.tag = d["tag"].cast<unsigned long long>();
    p.prof = d.contains("prof") ? getp<long long*>(d, "prof") : nullptr;
    return p;
}

inline size_t weight_bytes(int wtype) {
    if (wtype < 0 || wtype > 2) throw std::invalid_argument("wavenet_persistent: wtype must be 0 (fp32), 1 (fp16) or 2 (bf16)");
    return wtype == 0 ? 4 : 2;
}

// the plan as a dict: nblk, blk_lo, blk_wsmem, smem (bytes per block), mail / flag sizes
inline py::dict plan_dict(Params& p, size_t budget, int wtype) {
    const size_t smem = plan(p, budget, weight_bytes(wtype));
    if (smem == 0)
        throw std::invalid_argument(p.dsmem ? "wavenet_persistent: the chain does not fit one 16-block cluster (use dsmem=0)"
                                            : "wavenet_persistent: the model needs more than 64 layer blocks");
    py::dict out;
    out["nblk"] = p.nblk;
    out["blk_lo"] = std::vector<int>(p.blk_lo, p.blk_lo + p.nblk + 1);
    out["blk_wsmem"] = std::vector<int>(p.blk_wsmem, p.blk_wsmem + p.nblk + 1);
    out["smem"] = smem;
    out["nchains"] = p.nchains;
    out["mail_floats"] = mail_h_floats(p) + static_cast<size_t>(p.nchains) * p.nblk * p.M * p.Sp;
    out["n_flags"] = p.nchains * (2 * p.nblk + 1);
    return out;
}

}  // namespace wnp
}  // namespace agf
