// The allocation-free C API from C++17: the same trajectory protocol as
// tests/c/rules.c, for Adam and SGD, with RAII buffers and the header's extern "C".
//
//   rules_cpp adam|sgd f32|f64 [field=value ...] < input
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gradstep.h"

namespace {

[[noreturn]] void fail(const std::string &why) {
    std::fprintf(stderr, "%s\n", why.c_str());
    std::exit(1);
}

void check(gradstep_status s, const char *what) {
    if (s != GRADSTEP_OK) fail(std::string(what) + ": " + gradstep_status_str(s));
}

double number() {
    double v = 0;
    if (std::scanf("%lf", &v) != 1) fail("input ended early");
    return v;
}

template <typename H>
void set(H &h, const std::string &arg) {
    auto eq = arg.find('=');
    if (eq == std::string::npos) fail("expected field=value: " + arg);
    std::string name = arg.substr(0, eq);
    double v = std::strtod(arg.c_str() + eq + 1, nullptr);
    auto flag = static_cast<uint8_t>(v != 0.0);
    if constexpr (std::is_same_v<H, gradstep_adam>) {
        if (name == "lr") h.lr = v;
        else if (name == "beta1") h.beta1 = v;
        else if (name == "beta2") h.beta2 = v;
        else if (name == "eps") h.eps = v;
        else if (name == "weight_decay") h.weight_decay = v;
        else if (name == "decoupled_weight_decay") h.decoupled_weight_decay = flag;
        else if (name == "amsgrad") h.amsgrad = flag;
        else if (name == "maximize") h.maximize = flag;
        else fail("unknown field " + name);
    } else {
        if (name == "lr") h.lr = v;
        else if (name == "momentum") h.momentum = v;
        else if (name == "dampening") h.dampening = v;
        else if (name == "weight_decay") h.weight_decay = v;
        else if (name == "nesterov") h.nesterov = flag;
        else if (name == "maximize") h.maximize = flag;
        else fail("unknown field " + name);
    }
}

template <typename T, typename H, typename Len, typename Step>
void run(const H &h, Len state_len, Step step) {
    auto n = static_cast<size_t>(number());
    auto steps = static_cast<size_t>(number());
    size_t len = 0;
    check(state_len(&h, n, &len), "state_len");
    // `.data()` of an empty vector may be NULL, which gradstep refuses: keep one spare.
    std::vector<T> params(n + 1), grads(n + 1), state(len + 1);
    for (size_t i = 0; i < n; i++) params[i] = static_cast<T>(number());
    gradstep_scalars scalars{};
    for (size_t t = 0; t < steps; t++) {
        for (size_t i = 0; i < n; i++) grads[i] = static_cast<T>(number());
        check(step(&h, &scalars, params.data(), grads.data(), n, state.data(), len), "step");
        for (size_t i = 0; i < n; i++)
            std::printf(i ? " %.17g" : "%.17g", static_cast<double>(params[i]));
        std::printf("\n");
    }
    if (scalars.step != steps) fail("step count");
}

template <typename H, typename Len, typename F32, typename F64>
void rule(H h, int argc, char **argv, Len len, F32 f32, F64 f64) {
    for (int i = 3; i < argc; i++) set(h, argv[i]);
    if (std::strcmp(argv[2], "f32") == 0) run<float>(h, len, f32);
    else run<double>(h, len, f64);
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 3) fail("usage: rules_cpp adam|sgd f32|f64 [field=value ...] < input");
    if (std::strcmp(argv[1], "adam") == 0)
        rule(gradstep_adam_default(), argc, argv, gradstep_adam_state_len,
             gradstep_adam_step_f32, gradstep_adam_step_f64);
    else if (std::strcmp(argv[1], "sgd") == 0)
        rule(gradstep_sgd_default(), argc, argv, gradstep_sgd_state_len, gradstep_sgd_step_f32,
             gradstep_sgd_step_f64);
    else
        fail(std::string("unknown rule ") + argv[1]);
    return 0;
}
