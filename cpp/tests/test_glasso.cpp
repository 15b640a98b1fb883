// Tests are added with the implementation.
#include <doctest/doctest.h>
