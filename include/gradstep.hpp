/*
 * gradstep.hpp: a header-only C++17 wrapper over gradstep.h (no other library to
 * link: everything here is inline over the C functions of libgradstep).
 *
 *   gradstep::rule adam = gradstep::rule::parse("adam:lr=3e-4");
 *   gradstep::optimizer<float> opt(adam);
 *   opt.add_params(0, params, grads);       // std::vector<float>, std::array, ...
 *   opt.step();
 *
 * - gradstep::optimizer<T> and gradstep::schedule own their C handles (RAII, movable,
 *   not copyable); gradstep::rule is a value; gradstep::buffer<T> owns memory placed
 *   for a step's speed (gradstep_buffer_new_f32/_f64), for params, grads and state.
 * - Buffers are gradstep::view<T>: std::span<T> when the library is compiled as C++20
 *   or later, else a pointer + size view with the same constructors from containers
 *   (anything with data() and size()) and arrays.
 * - Errors: by default a refused call throws gradstep::error (a std::runtime_error
 *   whose what() is gradstep_last_error()'s message and whose code() is the status).
 *   Compiled without exceptions (-fno-exceptions), or with GRADSTEP_NO_EXCEPTIONS
 *   defined, every call that can fail returns gradstep::result<T> instead: test it
 *   with ok() or `if (r)`, read value(), status() and message(). Constructors cannot
 *   return a result: use the static create() functions, which exist in both modes.
 *
 * Thread safety is the C library's: a handle may move between threads, one call at a
 * time (a concurrent call gets GRADSTEP_BUSY). The const members (lr(), save(), ...)
 * are calls on the handle too: two threads calling them on one object at once may get
 * GRADSTEP_BUSY, unlike const members of the standard containers.
 *
 * Translation units built with exceptions and without may be linked together: each
 * mode's definitions live in an inline namespace of their own (gradstep::exceptions,
 * gradstep::results), so the linker never mixes them.
 */
#ifndef GRADSTEP_HPP
#define GRADSTEP_HPP

#if !defined(__cplusplus) || (__cplusplus < 201703L && !(defined(_MSVC_LANG) && _MSVC_LANG >= 201703L))
#error "gradstep.hpp needs C++17 or later (gradstep.h alone works in C89 and C++11)"
#endif

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gradstep.h"

#if !defined(GRADSTEP_NO_EXCEPTIONS) && (defined(__cpp_exceptions) || defined(__EXCEPTIONS))
#define GRADSTEP_EXCEPTIONS 1
#include <stdexcept>
#else
#define GRADSTEP_EXCEPTIONS 0
#endif

#if __cplusplus >= 202002L && defined(__has_include)
#if __has_include(<span>)
#include <span>
#define GRADSTEP_HAS_SPAN 1
#endif
#endif
#ifndef GRADSTEP_HAS_SPAN
#define GRADSTEP_HAS_SPAN 0
#endif

namespace gradstep {
#if GRADSTEP_EXCEPTIONS
inline namespace exceptions {
#else
inline namespace results {
#endif

/** The message of this thread's last refused C call (gradstep_last_error). A refusal
 * the wrapper makes itself, before any C call (lengths that differ, a NUL inside a
 * std::string), is only in the error's what() or the result's message(). */
inline std::string last_error() {
    std::size_t n = gradstep_last_error(nullptr, 0);
    std::string s(n + 1, '\0');
    gradstep_last_error(&s[0], s.size());
    s.resize(n);
    return s;
}

#if GRADSTEP_HAS_SPAN
/** A buffer: std::span. */
template <class T>
using view = std::span<T>;
#else
/** A buffer: pointer and size (C++17; std::span from C++20 on). */
template <class T>
class view {
public:
    constexpr view() noexcept = default;
    constexpr view(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <std::size_t N>
    constexpr view(T (&array)[N]) noexcept : data_(array), size_(N) {}
    /** From a container (an lvalue: the optimizer keeps the pointer) with data() and
     * size() whose data() converts to T*. */
    template <class C, class = std::enable_if_t<
                           std::is_convertible_v<decltype(std::declval<C &>().data()), T *> &&
                           !std::is_same_v<std::remove_cv_t<C>, view>>>
    constexpr view(C &c) noexcept : data_(c.data()), size_(c.size()) {}
    constexpr T *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T *begin() const noexcept { return data_; }
    constexpr T *end() const noexcept { return data_ + size_; }
    constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }

private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};
#endif

/** A refusal: the status and gradstep_last_error()'s message at the time. */
class failure {
public:
    failure(gradstep_status status, std::string message)
        : status_(status), message_(std::move(message)) {}
    gradstep_status status() const noexcept { return status_; }
    const std::string &message() const noexcept { return message_; }

private:
    gradstep_status status_;
    std::string message_;
};

#if GRADSTEP_EXCEPTIONS
/** What a refused call throws. */
class error : public std::runtime_error {
public:
    explicit error(const failure &f) : std::runtime_error(f.message()), code_(f.status()) {}
    /** The status the C function returned. */
    gradstep_status code() const noexcept { return code_; }

private:
    gradstep_status code_;
};
#endif

/** A value or a refusal (what calls return without exceptions). */
template <class T>
class [[nodiscard]] result {
public:
    result(T value) : value_(std::move(value)), failure_(GRADSTEP_OK, std::string()) {}
    result(failure f) : value_(), failure_(std::move(f)) {}
    bool ok() const noexcept { return failure_.status() == GRADSTEP_OK; }
    explicit operator bool() const noexcept { return ok(); }
    /** The value (a default one after a refusal). */
    T &value() & noexcept { return value_; }
    const T &value() const & noexcept { return value_; }
    T &&value() && noexcept { return std::move(value_); }
    gradstep_status status() const noexcept { return failure_.status(); }
    const std::string &message() const noexcept { return failure_.message(); }

private:
    T value_;
    failure failure_;
};

/** Success or a refusal. */
template <>
class [[nodiscard]] result<void> {
public:
    result() : failure_(GRADSTEP_OK, std::string()) {}
    result(failure f) : failure_(std::move(f)) {}
    bool ok() const noexcept { return failure_.status() == GRADSTEP_OK; }
    explicit operator bool() const noexcept { return ok(); }
    gradstep_status status() const noexcept { return failure_.status(); }
    const std::string &message() const noexcept { return failure_.message(); }

private:
    failure failure_;
};

namespace detail {

#if GRADSTEP_EXCEPTIONS
template <class T>
using ret = T;
[[noreturn]] inline void raise(gradstep_status s) { throw error(failure(s, last_error())); }
#define GRADSTEP_HPP_CHECK(call)                                                           \
    do {                                                                                   \
        gradstep_status gradstep_s_ = (call);                                              \
        if (gradstep_s_ != GRADSTEP_OK) ::gradstep::detail::raise(gradstep_s_);           \
    } while (0)
#define GRADSTEP_HPP_REFUSE(status, message)                                               \
    throw ::gradstep::error(::gradstep::failure(status, message))
inline void done() {}
#else
template <class T>
using ret = result<T>;
#define GRADSTEP_HPP_CHECK(call)                                                           \
    do {                                                                                   \
        gradstep_status gradstep_s_ = (call);                                              \
        if (gradstep_s_ != GRADSTEP_OK)                                                    \
            return ::gradstep::failure(gradstep_s_, ::gradstep::last_error());             \
    } while (0)
#define GRADSTEP_HPP_REFUSE(status, message) return ::gradstep::failure(status, message)
inline result<void> done() { return result<void>(); }
#endif

/** `p`, or for an empty container whose data() is NULL (an empty std::vector's may be)
 * a pointer to a placeholder: the C functions refuse NULL, and read or write nothing
 * through a buffer of length 0, so an empty tensor steps (a step of nothing) as it
 * does from Rust. */
template <class T>
T *nonnull(T *p) noexcept {
    static std::remove_const_t<T> none{};
    return p ? p : &none;
}

/** The message of a text refused for the NUL inside it (the C call reads up to a NUL). */
inline std::string nul_inside() { return "the text has a NUL character inside"; }

/** Whether C is a view (std::span or gradstep's own), which a temporary may be: the
 * memory it points to is the caller's, not the temporary's. */
template <class C>
struct is_view : std::false_type {};
#if GRADSTEP_HAS_SPAN
template <class T, std::size_t N>
struct is_view<std::span<T, N>> : std::true_type {};
#else
template <class T>
struct is_view<view<T>> : std::true_type {};
#endif

/** The message of a refusal the wrapper makes itself (the C call takes one length). */
inline std::string mismatch(std::size_t params, std::size_t grads) {
    return "gradient buffer has length " + std::to_string(grads) + ", parameters have " +
           std::to_string(params);
}

template <class T>
struct element;
template <>
struct element<float> {
    static constexpr gradstep_element value = GRADSTEP_F32;
};
template <>
struct element<double> {
    static constexpr gradstep_element value = GRADSTEP_F64;
};

}  // namespace detail

/** A call's result: T with exceptions, result<T> without. */
template <class T>
using ret = detail::ret<T>;

/** n zeroed elements from gradstep_buffer_new_f32/_f64 (owned, RAII, movable, not
 * copyable): memory placed for a step's speed (page-aligned; 2 MiB-aligned and on
 * transparent huge pages from 2 MiB on Linux) for params, grads or state. A container
 * with data() and size(), so it converts to view<T>. */
template <class T>
class buffer {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "gradstep::buffer<float> or gradstep::buffer<double>");

public:
    /** n zeroed elements. */
    static ret<buffer> create(std::size_t n) {
        T *p = nullptr;
        if constexpr (std::is_same_v<T, float>) {
            GRADSTEP_HPP_CHECK(gradstep_buffer_new_f32(n, &p));
        } else {
            GRADSTEP_HPP_CHECK(gradstep_buffer_new_f64(n, &p));
        }
        return buffer(p, n);
    }
#if GRADSTEP_EXCEPTIONS
    explicit buffer(std::size_t n) : buffer(create(n)) {}
#endif
    buffer(buffer &&o) noexcept
        : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    buffer &operator=(buffer &&o) noexcept {
        if (this != &o) {
            reset();
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    buffer(const buffer &) = delete;
    buffer &operator=(const buffer &) = delete;
    ~buffer() { reset(); }

    T *data() noexcept { return p_; }
    const T *data() const noexcept { return p_; }
    std::size_t size() const noexcept { return n_; }
    bool empty() const noexcept { return n_ == 0; }
    T *begin() noexcept { return p_; }
    T *end() noexcept { return p_ + n_; }
    const T *begin() const noexcept { return p_; }
    const T *end() const noexcept { return p_ + n_; }
    T &operator[](std::size_t i) noexcept { return p_[i]; }
    const T &operator[](std::size_t i) const noexcept { return p_[i]; }

private:
    buffer(T *p, std::size_t n) noexcept : p_(p), n_(n) {}
    void reset() noexcept {
        if (p_) (void)gradstep_buffer_free(std::exchange(p_, nullptr));
        n_ = 0;
    }
    friend class result<buffer>;
    buffer() noexcept = default;
    T *p_ = nullptr;
    std::size_t n_ = 0;
};

/** A rule and its hyperparameters (a gradstep_rule; the C struct is public). */
class rule {
public:
    gradstep_rule c;

    /** A rule from its C form. */
    explicit rule(const gradstep_rule &r) noexcept : c(r) {}
    /** torch's defaults for `kind` (a GRADSTEP_RULE_* constant). */
    static ret<rule> defaults(gradstep_rule_kind kind) {
        rule r;
        GRADSTEP_HPP_CHECK(gradstep_rule_default(kind, &r.c));
        return r;
    }
    /** A rule in the CLI's syntax: "adam:lr=3e-4,amsgrad". */
    static ret<rule> parse(const char *text) {
        rule r;
        GRADSTEP_HPP_CHECK(gradstep_rule_parse(text, &r.c));
        return r;
    }
    /** As parse(const char *); a text with a NUL inside is refused (GRADSTEP_BAD_RULE_TEXT),
     * not cut short there. */
    static ret<rule> parse(const std::string &text) {
        if (text.find('\0') != std::string::npos)
            GRADSTEP_HPP_REFUSE(GRADSTEP_BAD_RULE_TEXT, detail::nul_inside());
        return parse(text.c_str());
    }

    gradstep_rule_kind kind() const noexcept { return c.kind; }
    /** "adam", "sgd", ... */
    const char *name() const noexcept { return gradstep_rule_name(c.kind); }
    /** The state elements a step over n parameters needs. */
    ret<std::size_t> state_len(std::size_t n) const {
        std::size_t len = 0;
        GRADSTEP_HPP_CHECK(gradstep_rule_state_len(&c, n, &len));
        return len;
    }
    /** One step over caller-owned buffers (float or double). */
    ret<void> step(gradstep_scalars &scalars, view<float> params, view<const float> grads,
                   view<float> state) const {
        if (grads.size() != params.size()) GRADSTEP_HPP_REFUSE(GRADSTEP_LENGTH_MISMATCH, detail::mismatch(params.size(), grads.size()));
        GRADSTEP_HPP_CHECK(gradstep_rule_step_f32(&c, &scalars, detail::nonnull(params.data()), detail::nonnull(grads.data()),
                                                  params.size(), detail::nonnull(state.data()), state.size()));
        return detail::done();
    }
    ret<void> step(gradstep_scalars &scalars, view<double> params, view<const double> grads,
                   view<double> state) const {
        if (grads.size() != params.size()) GRADSTEP_HPP_REFUSE(GRADSTEP_LENGTH_MISMATCH, detail::mismatch(params.size(), grads.size()));
        GRADSTEP_HPP_CHECK(gradstep_rule_step_f64(&c, &scalars, detail::nonnull(params.data()), detail::nonnull(grads.data()),
                                                  params.size(), detail::nonnull(state.data()), state.size()));
        return detail::done();
    }
    /** One step with scratch memory (as long as params): a layer-wise rule (LAMB) keeps
     * its update there between its two passes; the same bits, half its square roots and
     * divisions (gradstep_rule_step_scratch_f32). */
    ret<void> step(gradstep_scalars &scalars, view<float> params, view<const float> grads,
                   view<float> state, view<float> scratch) const {
        if (grads.size() != params.size()) GRADSTEP_HPP_REFUSE(GRADSTEP_LENGTH_MISMATCH, detail::mismatch(params.size(), grads.size()));
        GRADSTEP_HPP_CHECK(gradstep_rule_step_scratch_f32(
            &c, &scalars, detail::nonnull(params.data()), detail::nonnull(grads.data()), params.size(), detail::nonnull(state.data()), state.size(),
            detail::nonnull(scratch.data()), scratch.size()));
        return detail::done();
    }
    ret<void> step(gradstep_scalars &scalars, view<double> params, view<const double> grads,
                   view<double> state, view<double> scratch) const {
        if (grads.size() != params.size()) GRADSTEP_HPP_REFUSE(GRADSTEP_LENGTH_MISMATCH, detail::mismatch(params.size(), grads.size()));
        GRADSTEP_HPP_CHECK(gradstep_rule_step_scratch_f64(
            &c, &scalars, detail::nonnull(params.data()), detail::nonnull(grads.data()), params.size(), detail::nonnull(state.data()), state.size(),
            detail::nonnull(scratch.data()), scratch.size()));
        return detail::done();
    }

private:
    rule() noexcept : c() {}
    friend class result<rule>;
};

/** A Lookahead composite: a rule with k, alpha and the sync's momentum option (a
 * gradstep_lookahead; the C struct is public). */
class lookahead {
public:
    gradstep_lookahead c;

    /** A composite from its C form. */
    explicit lookahead(const gradstep_lookahead &la) noexcept : c(la) {}
    /** `r` wrapped with pytorch_optimizer's defaults (k 5, alpha 0.5, momentum none). */
    explicit lookahead(const rule &r, std::uint64_t k = 5, double alpha = 0.5,
                       std::uint32_t momentum = GRADSTEP_LOOKAHEAD_NONE) noexcept
        : c{r.c, k, alpha, momentum} {}
    /** "lookahead(sgd:lr=0.1,momentum=0.9):k=5,alpha=0.5,momentum=pullback". */
    static ret<lookahead> parse(const char *text) {
        lookahead la;
        GRADSTEP_HPP_CHECK(gradstep_lookahead_parse(text, &la.c));
        return la;
    }
    /** As parse(const char *); a text with a NUL inside is refused (GRADSTEP_BAD_RULE_TEXT). */
    static ret<lookahead> parse(const std::string &text) {
        if (text.find('\0') != std::string::npos)
            GRADSTEP_HPP_REFUSE(GRADSTEP_BAD_RULE_TEXT, detail::nul_inside());
        return parse(text.c_str());
    }

    /** The wrapped rule. */
    rule inner() const noexcept { return rule(c.rule); }

private:
    lookahead() noexcept : c() {}
    friend class result<lookahead>;
};

/** A learning-rate schedule handle (owns a gradstep_schedule). */
class schedule {
public:
    /** A schedule from its config for a group whose learning rate is `lr`. */
    static ret<schedule> create(const gradstep_schedule_config &config, double lr) {
        gradstep_schedule *h = nullptr;
        GRADSTEP_HPP_CHECK(gradstep_schedule_new(&config, lr, &h));
        return schedule(h);
    }
#if GRADSTEP_EXCEPTIONS
    schedule(const gradstep_schedule_config &config, double lr) : schedule(create(config, lr)) {}
#endif
    schedule(schedule &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    schedule &operator=(schedule &&o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    schedule(const schedule &) = delete;
    schedule &operator=(const schedule &) = delete;
    ~schedule() { reset(); }

    /** One epoch (torch's scheduler.step()). */
    ret<void> step() {
        GRADSTEP_HPP_CHECK(gradstep_schedule_step(h_));
        return detail::done();
    }
    /** ReduceLROnPlateau's step with the monitored metric. */
    ret<void> step(double metric) {
        GRADSTEP_HPP_CHECK(gradstep_schedule_step_metric(h_, metric));
        return detail::done();
    }
    /** The current learning rate. */
    ret<double> lr() const {
        double lr = 0, momentum = 0;
        std::uint8_t has_momentum = 0;
        GRADSTEP_HPP_CHECK(gradstep_schedule_lr(h_, &lr, &momentum, &has_momentum));
        return lr;
    }
    /** The C handle (still owned by this object). */
    gradstep_schedule *handle() const noexcept { return h_; }

private:
    explicit schedule(gradstep_schedule *h) noexcept : h_(h) {}
    void reset() noexcept {
        if (h_) (void)gradstep_schedule_free(std::exchange(h_, nullptr));
    }
    friend class result<schedule>;
    schedule() noexcept = default;
    gradstep_schedule *h_ = nullptr;
};

/** An optimizer over float or double tensors (owns a gradstep_optimizer). The
 * buffers given to add_params are the caller's and must outlive the optimizer. */
template <class T>
class optimizer {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "gradstep::optimizer<float> or gradstep::optimizer<double>");

public:
    /** An optimizer with `r` as group 0. */
    static ret<optimizer> create(const rule &r) {
        gradstep_optimizer *h = nullptr;
        GRADSTEP_HPP_CHECK(gradstep_optimizer_new(&r.c, detail::element<T>::value, &h));
        return optimizer(h);
    }
    /** An optimizer whose every group's rule is wrapped in `la`'s Lookahead, with
     * `la`'s rule as group 0. */
    static ret<optimizer> create(const lookahead &la) {
        gradstep_optimizer *h = nullptr;
        GRADSTEP_HPP_CHECK(
            gradstep_optimizer_new_lookahead(&la.c, detail::element<T>::value, &h));
        return optimizer(h);
    }
#if GRADSTEP_EXCEPTIONS
    explicit optimizer(const rule &r) : optimizer(create(r)) {}
    explicit optimizer(const lookahead &la) : optimizer(create(la)) {}
#endif
    optimizer(optimizer &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    optimizer &operator=(optimizer &&o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    optimizer(const optimizer &) = delete;
    optimizer &operator=(const optimizer &) = delete;
    ~optimizer() { reset(); }

    /** A new param group with its own rule (of the same kind); returns its index. */
    ret<std::size_t> add_group(const rule &r) {
        std::size_t g = 0;
        GRADSTEP_HPP_CHECK(gradstep_optimizer_add_group(h_, &r.c, &g));
        return g;
    }
    /** Wraps every group's rule in Lookahead (k steps between syncs, slow step size
     * alpha, momentum a GRADSTEP_LOOKAHEAD_* option); before any add_params. */
    ret<void> set_lookahead(std::uint64_t k, double alpha,
                            std::uint32_t momentum = GRADSTEP_LOOKAHEAD_NONE) {
        GRADSTEP_HPP_CHECK(gradstep_optimizer_set_lookahead(h_, k, alpha, momentum));
        return detail::done();
    }
    /** Registers a tensor in `group`: params (updated) and grads (read), equal sizes.
     * The optimizer keeps both pointers: a temporary container for either does not
     * compile (a std::span<const T> would take one in C++20; the overload below refuses
     * it), a view of the caller's memory does. */
    ret<void> add_params(std::size_t group, view<T> params, view<const T> grads) {
        if (params.size() != grads.size()) GRADSTEP_HPP_REFUSE(GRADSTEP_LENGTH_MISMATCH, detail::mismatch(params.size(), grads.size()));
        if constexpr (std::is_same_v<T, float>) {
            GRADSTEP_HPP_CHECK(gradstep_optimizer_add_params_f32(h_, group, detail::nonnull(params.data()),
                                                                 detail::nonnull(grads.data()), params.size()));
        } else {
            GRADSTEP_HPP_CHECK(gradstep_optimizer_add_params_f64(h_, group, detail::nonnull(params.data()),
                                                                 detail::nonnull(grads.data()), params.size()));
        }
        return detail::done();
    }
    template <class C, class = std::enable_if_t<!std::is_lvalue_reference_v<C> &&
                                                !detail::is_view<std::remove_cv_t<C>>::value>>
    ret<void> add_params(std::size_t group, view<T> params, C &&grads) = delete;
    /** One step of every registered tensor. */
    ret<void> step() {
        GRADSTEP_HPP_CHECK(gradstep_optimizer_step(h_));
        return detail::done();
    }
    ret<void> set_lr(std::size_t group, double lr) {
        GRADSTEP_HPP_CHECK(gradstep_optimizer_set_lr(h_, group, lr));
        return detail::done();
    }
    ret<double> lr(std::size_t group) const {
        double lr = 0;
        GRADSTEP_HPP_CHECK(gradstep_optimizer_lr(h_, group, &lr));
        return lr;
    }
    /** How many threads a step may use (the same bits for any number). */
    ret<void> set_threads(std::size_t threads) {
        GRADSTEP_HPP_CHECK(gradstep_optimizer_set_threads(h_, threads));
        return detail::done();
    }
    /** Attaches a schedule to a group (replacing any). */
    ret<void> attach_schedule(std::size_t group, const gradstep_schedule_config &config) {
        GRADSTEP_HPP_CHECK(gradstep_optimizer_attach_schedule(h_, group, &config));
        return detail::done();
    }
    ret<void> attach_schedule(std::size_t group, const schedule &s) {
        GRADSTEP_HPP_CHECK(gradstep_optimizer_attach_schedule_handle(h_, group, s.handle()));
        return detail::done();
    }
    /** Steps the attached epoch-driven schedules (one epoch); groups with
     * ReduceLROnPlateau are stepped by schedule_step(metric). */
    ret<void> schedule_step() {
        GRADSTEP_HPP_CHECK(gradstep_optimizer_schedule_step(h_));
        return detail::done();
    }
    /** Steps every group's ReduceLROnPlateau with the epoch's metric. */
    ret<void> schedule_step(double metric) {
        GRADSTEP_HPP_CHECK(gradstep_optimizer_schedule_step_metric(h_, metric));
        return detail::done();
    }
    /** A checkpoint of the whole optimizer, params included. */
    ret<std::vector<std::uint8_t>> save() const {
        std::size_t len = 0, written = 0;
        GRADSTEP_HPP_CHECK(gradstep_optimizer_checkpoint_len(h_, &len));
        std::vector<std::uint8_t> bytes(len);
        GRADSTEP_HPP_CHECK(
            gradstep_optimizer_checkpoint_save(h_, detail::nonnull(bytes.data()), bytes.size(), &written));
        bytes.resize(written);
        return bytes;
    }
    /** Restores a checkpoint of an optimizer of the same shape. */
    ret<void> load(view<const std::uint8_t> bytes) {
        GRADSTEP_HPP_CHECK(gradstep_optimizer_checkpoint_load(h_, detail::nonnull(bytes.data()), bytes.size()));
        return detail::done();
    }
    /** The same from save()'s vector, a temporary one too: load(other.save()). */
    ret<void> load(const std::vector<std::uint8_t> &bytes) {
        return load(view<const std::uint8_t>(bytes.data(), bytes.size()));
    }
    /** The C handle (still owned by this object). */
    gradstep_optimizer *handle() const noexcept { return h_; }

private:
    explicit optimizer(gradstep_optimizer *h) noexcept : h_(h) {}
    void reset() noexcept {
        if (h_) (void)gradstep_optimizer_free(std::exchange(h_, nullptr));
    }
    friend class result<optimizer>;
    optimizer() noexcept = default;
    gradstep_optimizer *h_ = nullptr;
};

}  // inline namespace exceptions / results
}  // namespace gradstep

#undef GRADSTEP_HPP_CHECK
#undef GRADSTEP_HPP_REFUSE

#endif /* GRADSTEP_HPP */
