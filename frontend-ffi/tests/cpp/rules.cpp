// The allocation-free C API from C++17: the same trajectory protocol as
// tests/c/rules.c, with RAII buffers and the header's extern "C".
//
//   rules_cpp SPEC f32|f64 < input      (SPEC: "adam:lr=0.001,amsgrad=false,...")
//   rules_cpp --tour
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
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

// The trajectory protocol of tests/c/rules.c: the rule by name ("adam:lr=0.001,..."),
// with RAII buffers.
template <typename T, typename Step>
void run(const gradstep_rule &rule, Step step) {
    auto n = static_cast<size_t>(number());
    auto steps = static_cast<size_t>(number());
    size_t len = 0;
    check(gradstep_rule_state_len(&rule, n, &len), "state_len");
    // `.data()` of an empty vector may be NULL, which gradstep refuses: keep one spare.
    std::vector<T> params(n + 1), grads(n + 1), state(len + 1);
    for (size_t i = 0; i < n; i++) params[i] = static_cast<T>(number());
    gradstep_scalars scalars{};
    for (size_t t = 0; t < steps; t++) {
        for (size_t i = 0; i < n; i++) grads[i] = static_cast<T>(number());
        check(step(&rule, &scalars, params.data(), grads.data(), n, state.data(), len), "step");
        for (size_t i = 0; i < n; i++)
            std::printf(i ? " %.17g" : "%.17g", static_cast<double>(params[i]));
        std::printf("\n");
    }
    if (scalars.step != steps) fail("step count");
}

// RAII for the handles.
struct OptimizerFree {
    void operator()(gradstep_optimizer *o) const { gradstep_optimizer_free(o); }
};
using Optimizer = std::unique_ptr<gradstep_optimizer, OptimizerFree>;

void expect(gradstep_status got, gradstep_status want, const char *what) {
    if (got != want)
        fail(std::string(what) + ": got " + gradstep_status_str(got) + ", expected " +
             gradstep_status_str(want));
}

// Both API levels, a schedule, clipping, a checkpoint round trip and some refusals,
// the way a C++ program would use them.
int tour() {
    const size_t n = 16;
    std::vector<float> w(n), g(n), w_flat(n);
    for (size_t i = 0; i < n; i++) w[i] = w_flat[i] = std::sin(static_cast<float>(i));

    // A typed struct from its default, placed in a rule by hand...
    gradstep_rule sgd{};
    sgd.kind = GRADSTEP_RULE_SGD;
    sgd.params.sgd = gradstep_sgd_default();
    sgd.params.sgd.lr = 0.05;
    sgd.params.sgd.momentum = 0.9;
    sgd.params.sgd.nesterov = 1;
    // ...is the rule the same text names.
    gradstep_rule named{};
    check(gradstep_rule_parse("SGD:lr=0.05,momentum=0.9,nesterov", &named), "parse");
    if (named.kind != sgd.kind || std::memcmp(&named.params.sgd, &sgd.params.sgd,
                                               offsetof(gradstep_sgd, maximize) + 1) != 0)
        fail("parsed rule differs");
    gradstep_optimizer *raw = nullptr;
    expect(gradstep_optimizer_new(&sgd, GRADSTEP_F32, &raw), GRADSTEP_OK, "new");
    Optimizer opt(raw);
    expect(gradstep_optimizer_add_params_f32(opt.get(), 0, w.data(), g.data(), n), GRADSTEP_OK,
           "add_params");
    gradstep_schedule_config cos = gradstep_schedule_default(GRADSTEP_SCHEDULE_COSINE);
    cos.params.cosine.t_max = 10;
    expect(gradstep_optimizer_attach_schedule(opt.get(), 0, &cos), GRADSTEP_OK, "attach");

    size_t len = 0;
    check(gradstep_rule_state_len(&sgd, n, &len), "state_len");
    std::vector<float> state(len + 1);
    gradstep_scalars scalars{};
    gradstep_schedule *s = nullptr;
    expect(gradstep_schedule_new(&cos, sgd.params.sgd.lr, &s), GRADSTEP_OK, "schedule");

    for (int t = 0; t < 8; t++) {
        for (size_t i = 0; i < n; i++) g[i] = 10.0f * std::cos(static_cast<float>(i + t));
        float *grads[] = {g.data()};
        size_t lens[] = {n};
        double total = 0;
        expect(gradstep_clip_grad_norm_f32(grads, lens, 1, 1.0, 2.0, 0, &total), GRADSTEP_OK,
               "clip");
        if (!(total > 1.0)) fail("clip did not see a large norm");
        expect(gradstep_optimizer_step(opt.get()), GRADSTEP_OK, "step");
        expect(gradstep_optimizer_schedule_step(opt.get()), GRADSTEP_OK, "schedule_step");
        // The same with the allocation-free API and a schedule handle.
        double lr = 0;
        check(gradstep_schedule_lr(s, &lr, nullptr, nullptr), "lr");
        gradstep_rule h = sgd;
        h.params.sgd.lr = lr;
        check(gradstep_rule_step_f32(&h, &scalars, w_flat.data(), g.data(), n, state.data(), len),
              "flat step");
        check(gradstep_schedule_step(s), "schedule step");
    }
    if (w != w_flat) fail("handle and flat API differ");

    // Checkpoint the flat optimizer, restore into new buffers, compare.
    size_t cap = 0, written = 0;
    check(gradstep_checkpoint_len(&sgd, GRADSTEP_F32, n, 1, &cap), "checkpoint_len");
    std::vector<uint8_t> bytes(cap);
    check(gradstep_checkpoint_save_f32(&sgd, &scalars, state.data(), len, w_flat.data(), n,
                                        bytes.data(), cap, &written),
          "save");
    gradstep_rule back{};
    gradstep_scalars back_scalars{};
    std::vector<float> back_state(len + 1), back_w(n);
    expect(gradstep_checkpoint_load_f32(bytes.data(), written, GRADSTEP_RULE_SGD, nullptr,
                                        &back_scalars, back_state.data(), len, back_w.data(), n),
           GRADSTEP_NULL_POINTER, "load into NULL");
    expect(gradstep_checkpoint_load_f32(bytes.data(), written, GRADSTEP_RULE_ADAM, &back,
                                        &back_scalars, back_state.data(), len, back_w.data(), n),
           GRADSTEP_CHECKPOINT_WRONG_RULE, "load as adam");
    check(gradstep_checkpoint_load_f32(bytes.data(), written, GRADSTEP_RULE_SGD, &back,
                                        &back_scalars, back_state.data(), len, back_w.data(), n),
          "load");
    if (back_w != w_flat || back.kind != GRADSTEP_RULE_SGD ||
        back.params.sgd.momentum != sgd.params.sgd.momentum || back_scalars.step != 8)
        fail("checkpoint round trip");

    // Refusals.
    expect(gradstep_rule_step_f32(&sgd, &scalars, nullptr, g.data(), 0, state.data(), 0),
           GRADSTEP_NULL_POINTER, "NULL params");
    gradstep_rule bad = sgd;
    bad.params.sgd.lr = -1;
    expect(gradstep_rule_step_f32(&bad, &scalars, w.data(), g.data(), n, state.data(), len),
           GRADSTEP_INVALID_HYPERPARAMETER, "negative lr");
    expect(gradstep_rule_parse("sgd:nesterov=perhaps", &bad), GRADSTEP_BAD_RULE_TEXT,
           "bad flag");
    expect(gradstep_schedule_free(s), GRADSTEP_OK, "free schedule");
    expect(gradstep_schedule_free(s), GRADSTEP_INVALID_HANDLE, "double free");
    std::printf("tour: ok\n");
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc == 2 && std::strcmp(argv[1], "--tour") == 0) return tour();
    if (argc != 3) fail("usage: rules_cpp SPEC f32|f64 < input | rules_cpp --tour");
    gradstep_rule rule{};
    check(gradstep_rule_parse(argv[1], &rule), "parse");
    if (std::strcmp(argv[2], "f32") == 0) run<float>(rule, gradstep_rule_step_f32);
    else run<double>(rule, gradstep_rule_step_f64);
    return 0;
}
