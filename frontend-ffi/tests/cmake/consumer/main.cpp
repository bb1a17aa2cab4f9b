// The C++ wrapper from a CMake project: gradstep::gradstep brings gradstep.hpp too.
#include <cstdio>
#include <vector>

#include <gradstep.hpp>

int main() {
    std::vector<float> params{1.0f, -2.0f}, grads{0.5f, -0.25f};
    try {
        gradstep::optimizer<float> opt(gradstep::rule::parse("adam:lr=0.1"));
        opt.add_params(0, params, grads);
        opt.step();
        opt.set_lr(7, 0.1);
        std::fprintf(stderr, "set_lr on a missing group was not refused\n");
        return 1;
    } catch (const gradstep::error &e) {
        if (e.code() != GRADSTEP_NO_SUCH_GROUP || params[0] > 0.91f || params[0] < 0.89f) {
            std::fprintf(stderr, "%s, params %g\n", e.what(), params[0]);
            return 1;
        }
    }
    std::printf("consumer ok\n");
    return 0;
}
