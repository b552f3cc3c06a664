// Test helper for the signing tests: the rpiboot::Error a piece of code throws.
#pragma once

#include <gtest/gtest.h>

#include "rpiboot/core/error.hpp"

namespace rpiboot::test {

// Runs `body` and returns the rpiboot::Error it threw (fails the test if none).
template <typename F>
Error thrownBy(F&& body) {
    try {
        body();
    } catch (const Error& e) {
        return e;
    }
    ADD_FAILURE() << "expected an rpiboot::Error";
    return Error(Errc::Io, "no error");
}

}  // namespace rpiboot::test
