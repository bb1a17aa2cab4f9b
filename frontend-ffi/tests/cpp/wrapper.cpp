// The C++ wrapper (include/gradstep.hpp) in each of its builds: C++17 (pointer + size
// views) and C++20 (std::span), with exceptions and without (-fno-exceptions: results).
// tests/c_programs.rs compiles it all four ways under ASan/UBSan (leaks are errors, so
// every handle the RAII objects own is freed) and expects "wrapper: ok".
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gradstep.hpp"

namespace {

[[noreturn]] void fail(int line, const std::string &why) {
    std::fprintf(stderr, "wrapper.cpp:%d: %s\n", line, why.c_str());
    std::exit(1);
}

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) fail(__LINE__, #cond);                                              \
    } while (0)

#if GRADSTEP_EXCEPTIONS
// A call that must succeed gives its value.
#define VALUE(expr) (expr)
#define DONE(expr) (expr)
// A call that must be refused with `want` and a message containing `text`.
#define REFUSED(expr, want, text)                                                      \
    do {                                                                                 \
        try {                                                                            \
            (void)(expr);                                                                \
            fail(__LINE__, "not refused: " #expr);                                       \
        } catch (const gradstep::error &e) {                                             \
            if (e.code() != (want) || !std::strstr(e.what(), text))                    \
                fail(__LINE__, std::string("refused with ") + e.what());                 \
        }                                                                                \
    } while (0)
#else
template <class T>
T value(int line, gradstep::result<T> r) {
    if (!r) fail(line, "refused: " + r.message());
    return std::move(r).value();
}
#define VALUE(expr) value(__LINE__, (expr))
#define DONE(expr)                                                                       \
    do {                                                                                 \
        gradstep::result<void> r_ = (expr);                                              \
        if (!r_) fail(__LINE__, "refused: " + r_.message());                             \
    } while (0)
#define REFUSED(expr, want, text)                                                        \
    do {                                                                                 \
        auto r_ = (expr);                                                                \
        if (r_.ok() || r_.status() != (want) || r_.message().find(text) == std::string::npos) \
            fail(__LINE__, "refused with: " + r_.message());                             \
    } while (0)
#endif

#if __cplusplus >= 202002L
static_assert(GRADSTEP_HAS_SPAN && std::is_same_v<gradstep::view<float>, std::span<float>>,
              "C++20 builds use std::span");
#else
static_assert(!GRADSTEP_HAS_SPAN, "C++17 builds use gradstep's own view");
#endif
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
static_assert(GRADSTEP_EXCEPTIONS, "exceptions by default");
#else
static_assert(!GRADSTEP_EXCEPTIONS, "results without exceptions");
#endif

bool same(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

int main() {
    // Rules as values; a step over caller-owned containers.
    gradstep::rule adam = VALUE(gradstep::rule::parse("adam:lr=0.1"));
    CHECK(adam.kind() == GRADSTEP_RULE_ADAM);
    CHECK(std::strcmp(adam.name(), "adam") == 0);
    CHECK(VALUE(adam.state_len(2)) == 4);
    std::vector<float> params{1.0f, -2.0f}, grads{0.5f, -0.25f}, state(4);
    gradstep_scalars scalars{};
    DONE(adam.step(scalars, params, grads, state));
    CHECK(std::fabs(params[0] - 0.9f) < 1e-6f && std::fabs(params[1] + 1.9f) < 1e-6f);

    void *freed[2] = {nullptr, nullptr};
    // gradstep::buffer: zeroed, page-aligned memory that steps to the same bits as a
    // vector's, moves (the moved-from one empty) and frees itself.
    {
        gradstep::buffer<float> bp = VALUE(gradstep::buffer<float>::create(2));
        gradstep::buffer<float> bs = VALUE(gradstep::buffer<float>::create(4));
        gradstep::buffer<double> bd = VALUE(gradstep::buffer<double>::create(3));
        CHECK(bp.size() == 2 && bs.size() == 4 && bd.size() == 3 && !bp.empty());
        CHECK(reinterpret_cast<std::uintptr_t>(bp.data()) % 4096 == 0);
        CHECK(reinterpret_cast<std::uintptr_t>(bd.data()) % 4096 == 0);
        for (float x : bs) CHECK(x == 0.0f);
        CHECK(bd[0] == 0.0 && bd[2] == 0.0);
        std::vector<float> vp{1.0f, -2.0f}, vs(4);
        bp[0] = 1.0f;
        bp[1] = -2.0f;
        gradstep_scalars sa{}, sb{};
        for (int t = 0; t < 3; ++t) {
            DONE(adam.step(sa, bp, grads, bs));
            DONE(adam.step(sb, vp, grads, vs));
        }
        for (std::size_t i = 0; i < 2; ++i) CHECK(same(bp[i], vp[i]));
        CHECK(bp[0] != 1.0f);
        float *at = bp.data();
        gradstep::buffer<float> moved = std::move(bp);
        CHECK(moved.data() == at && moved.size() == 2);
        CHECK(bp.data() == nullptr && bp.size() == 0);
        float *old = bs.data();
        bs = std::move(moved);
        CHECK(bs.data() == at && moved.data() == nullptr);
        // The buffer a move-assignment replaced was freed (a live one would be freed
        // here, with GRADSTEP_OK; a freed one is refused).
        CHECK(gradstep_buffer_free(old) == GRADSTEP_INVALID_HANDLE);
        REFUSED(gradstep::buffer<float>::create(SIZE_MAX), GRADSTEP_LENGTH_TOO_LARGE,
                "more than PTRDIFF_MAX bytes");
        freed[0] = bs.data();
        freed[1] = bd.data();
    }
    // Each buffer was freed when its owner went out of scope.
    CHECK(gradstep_buffer_free(freed[0]) == GRADSTEP_INVALID_HANDLE);
    CHECK(gradstep_buffer_free(freed[1]) == GRADSTEP_INVALID_HANDLE);

    // LAMB with scratch memory: the bits of the step without.
    gradstep::rule lamb = VALUE(gradstep::rule::parse("lamb:lr=0.01,weight_decay=0.1"));
    std::vector<float> pa{1.0f, -2.0f, 0.5f}, pb = pa, lg{0.5f, -0.25f, 2.0f}, scratch(3);
    std::vector<float> lsa(6), lsb(6);
    gradstep_scalars lca{}, lcb{};
    for (int t = 0; t < 3; ++t) {
        DONE(lamb.step(lca, pa, lg, lsa));
        DONE(lamb.step(lcb, pb, lg, lsb, scratch));
    }
    for (std::size_t i = 0; i < pa.size(); ++i) CHECK(same(pa[i], pb[i]));
    CHECK(pa[0] != 1.0f);
    std::vector<float> short_scratch(2);
    REFUSED(lamb.step(lcb, pb, lg, lsb, short_scratch), GRADSTEP_LENGTH_MISMATCH,
            "scratch slice has length 2, parameters have 3");

    // Refusals carry the C library's message (or the wrapper's own).
    REFUSED(gradstep::rule::parse("adam:lx=1"), GRADSTEP_BAD_RULE_TEXT, "lx");
    REFUSED(gradstep::rule::defaults(9999), GRADSTEP_UNKNOWN_KIND, "unknown");
    // Empty containers (whose data() may be NULL, which the C functions refuse): an
    // empty tensor steps, as from Rust (its step count advances); an empty checkpoint
    // is a bad checkpoint, not a null pointer.
    {
        std::vector<float> e;
        gradstep_scalars es{};
        DONE(adam.step(es, e, e, e));
        DONE(adam.step(es, e, e, e));
        CHECK(es.step == 2);
    }
    // A std::string with a NUL inside is refused, not read up to the NUL.
    REFUSED(gradstep::rule::parse(std::string("adam\0:lr=5", 10)), GRADSTEP_BAD_RULE_TEXT,
            "NUL");
    REFUSED(gradstep::lookahead::parse(std::string("lookahead(sgd)\0:k=0", 20)),
            GRADSTEP_BAD_RULE_TEXT, "NUL");
    std::vector<float> short_state(3);
    REFUSED(adam.step(scalars, params, grads, short_state), GRADSTEP_STATE_LAYOUT,
            "state length 3, expected 4 (2 slots \xc3\x97 2)");
    std::vector<float> one_grad(1);
    REFUSED(adam.step(scalars, params, one_grad, state), GRADSTEP_LENGTH_MISMATCH,
            "gradient buffer has length 1, parameters have 2");
    gradstep_rule c = adam.c;
    c.params.adam.lr = -1;
    gradstep::rule bad(c);
    REFUSED(bad.step(scalars, params, grads, state), GRADSTEP_INVALID_HYPERPARAMETER,
            "invalid hyperparameter lr = -1: must be finite and >= 0");

    // The optimizer handle steps as the rule does, bit for bit.
    std::vector<float> p1{1.0f, -2.0f, 3.0f}, g1{0.5f, -0.25f, 1.0f};
    std::vector<float> p2 = p1, s2(6);
    gradstep_scalars sc2{};
    gradstep::optimizer<float> opt = VALUE(gradstep::optimizer<float>::create(adam));
    DONE(opt.add_params(0, p1, g1));
    for (int t = 0; t < 3; ++t) {
        DONE(opt.step());
        DONE(adam.step(sc2, p2, g1, s2));
    }
    for (std::size_t i = 0; i < p1.size(); ++i) CHECK(same(p1[i], p2[i]));
    CHECK(VALUE(opt.lr(0)) == 0.1);
    DONE(opt.set_lr(0, 0.05));
    CHECK(VALUE(opt.lr(0)) == 0.05);
    REFUSED(opt.set_lr(5, 0.1), GRADSTEP_NO_SUCH_GROUP, "no param group 5");
    REFUSED(opt.add_params(0, p2, one_grad), GRADSTEP_LENGTH_MISMATCH, "gradient buffer");
    DONE(opt.set_threads(2));

    // A checkpoint restores the params and the state.
    std::vector<std::uint8_t> bytes = VALUE(opt.save());
    CHECK(!bytes.empty());
    std::vector<float> saved = p1;
    DONE(opt.step());
    CHECK(!same(p1[0], saved[0]));
    DONE(opt.load(bytes));
    for (std::size_t i = 0; i < p1.size(); ++i) CHECK(same(p1[i], saved[i]));
    REFUSED(opt.load(std::vector<std::uint8_t>{}), GRADSTEP_BAD_CHECKPOINT, "");
    std::vector<std::uint8_t> garbage(bytes.size(), 0x5a);
    REFUSED(opt.load(garbage), GRADSTEP_BAD_CHECKPOINT, "checkpoint");

    // Moving hands the handle over; the moved-from object frees nothing.
    gradstep::optimizer<float> moved = std::move(opt);
    DONE(moved.step());
    opt = std::move(moved);
    DONE(opt.step());

    // Doubles, from std::array and a C array; two groups.
    std::array<double, 2> pd{1.0, 2.0};
    double gd[2] = {0.5, 0.5};
    gradstep::rule sgd = VALUE(gradstep::rule::defaults(GRADSTEP_RULE_SGD));
    sgd.c.params.sgd.lr = 0.5;
    gradstep::optimizer<double> od = VALUE(gradstep::optimizer<double>::create(sgd));
    std::size_t g = VALUE(od.add_group(sgd));
    CHECK(g == 1);
    DONE(od.add_params(g, pd, gd));
    DONE(od.step());
    CHECK(pd[0] == 0.75 && pd[1] == 1.75);

    // Schedules: a handle of its own, and attached to a group.
    gradstep_schedule_config exp = gradstep_schedule_default(GRADSTEP_SCHEDULE_EXPONENTIAL);
    exp.params.exponential.gamma = 0.5;
    gradstep::schedule s = VALUE(gradstep::schedule::create(exp, 1.0));
    CHECK(VALUE(s.lr()) == 1.0);
    DONE(s.step());
    CHECK(VALUE(s.lr()) == 0.5);
    DONE(od.attach_schedule(g, s));
    DONE(od.schedule_step());
    CHECK(VALUE(od.lr(g)) == 0.25);
    // ReduceLROnPlateau on a group steps with the metric (patience 0, factor 0.5: a
    // metric that does not improve halves the rate); schedule_step() leaves it alone.
    gradstep::optimizer<double> op = VALUE(gradstep::optimizer<double>::create(sgd));
    std::vector<double> pp{1.0}, gp{0.5};
    DONE(op.add_params(0, pp, gp));
    gradstep_schedule_config plateau = gradstep_schedule_default(GRADSTEP_SCHEDULE_PLATEAU);
    plateau.params.plateau.patience = 0;
    plateau.params.plateau.factor = 0.5;
    DONE(op.attach_schedule(0, plateau));
    DONE(op.schedule_step(1.0));
    CHECK(VALUE(op.lr(0)) == 0.5);
    DONE(op.schedule_step(2.0));
    CHECK(VALUE(op.lr(0)) == 0.25);
    DONE(op.schedule_step());
    CHECK(VALUE(op.lr(0)) == 0.25);
    gradstep_schedule_config none = gradstep_schedule_default(0);
    REFUSED(gradstep::schedule::create(none, 1.0), GRADSTEP_UNKNOWN_KIND, "unknown");

    // Lookahead: parsed or built from a rule; k = 2, alpha = 0.5 over SGD (lr 0.5):
    // θ 1 → 0.75 → 0.5, synced to 1 + 0.5·(0.5 − 1) = 0.75.
    gradstep::lookahead la = VALUE(gradstep::lookahead::parse("lookahead(sgd:lr=0.5):k=2"));
    CHECK(la.c.k == 2 && la.c.alpha == 0.5 && la.c.momentum == GRADSTEP_LOOKAHEAD_NONE);
    CHECK(la.inner().kind() == GRADSTEP_RULE_SGD);
    REFUSED(gradstep::lookahead::parse("lookahead(sgd):k=0"), GRADSTEP_INVALID_HYPERPARAMETER,
            "k");
    std::vector<double> pl{1.0}, gl{0.5};
    gradstep::optimizer<double> ol = VALUE(gradstep::optimizer<double>::create(la));
    DONE(ol.add_params(0, pl, gl));
    DONE(ol.step());
    CHECK(pl[0] == 0.75);
    DONE(ol.step());
    CHECK(pl[0] == 0.75);
    // The same composite set on a plain optimizer; refused once params are added.
    gradstep::optimizer<double> os = VALUE(gradstep::optimizer<double>::create(la.inner()));
    DONE(os.set_lookahead(2, 0.5));
    std::vector<double> ps{1.0};
    DONE(os.add_params(0, ps, gl));
    DONE(os.step());
    DONE(os.step());
    CHECK(ps[0] == 0.75);
    REFUSED(os.set_lookahead(3, 0.5), GRADSTEP_STATE_LAYOUT, "");
    gradstep::lookahead built(sgd, 2, 0.5, GRADSTEP_LOOKAHEAD_RESET);
    CHECK(built.c.momentum == GRADSTEP_LOOKAHEAD_RESET);

    std::printf("wrapper: ok\n");
    return 0;
}
