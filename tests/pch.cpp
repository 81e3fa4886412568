// Owner of the tests' precompiled header (tformer.hpp and Catch2); compiles to nothing.
