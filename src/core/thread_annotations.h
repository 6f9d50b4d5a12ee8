#pragma once

// Clang's thread-safety attributes, as Abseil names them
// (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html), with an LF_
// prefix. Under clang they let -Wthread-safety prove at compile time that a
// member marked LF_GUARDED_BY(mu_) is only touched with mu_ held; the fuzz
// build compiles every library with clang and that warning as an error, so CI
// checks them. Elsewhere (GCC builds the binary) they expand to nothing.
//
// The capability they name is a lastframe::Mutex (core/mutex.h); a plain
// std::mutex is not one, and cannot be named.

#if defined(__clang__)
#define LF_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define LF_THREAD_ANNOTATION_(x)
#endif

// A type whose instances are capabilities (locks): lastframe::Mutex.
#define LF_CAPABILITY(name) LF_THREAD_ANNOTATION_(capability(name))
// An RAII type that holds a capability for its lifetime: lastframe::MutexLock.
#define LF_SCOPED_CAPABILITY LF_THREAD_ANNOTATION_(scoped_lockable)

// A data member read or written only with capability |x| held.
#define LF_GUARDED_BY(x) LF_THREAD_ANNOTATION_(guarded_by(x))
// A pointer (or smart pointer) member whose pointee is guarded by |x|; the
// pointer itself is not.
#define LF_PT_GUARDED_BY(x) LF_THREAD_ANNOTATION_(pt_guarded_by(x))

// Lock order: this capability is taken before (after) the ones named.
#define LF_ACQUIRED_BEFORE(...) LF_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define LF_ACQUIRED_AFTER(...) LF_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))

// The caller must hold the capabilities (exclusively, or at least shared).
#define LF_REQUIRES(...) LF_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define LF_REQUIRES_SHARED(...) LF_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
// The caller must not hold them (the function takes them itself).
#define LF_EXCLUDES(...) LF_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))

// The function takes (gives back) the capabilities; none named: |this|.
#define LF_ACQUIRE(...) LF_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define LF_ACQUIRE_SHARED(...) LF_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define LF_RELEASE(...) LF_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define LF_RELEASE_SHARED(...) LF_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
// The function takes the capabilities when it returns |ok| (true or false).
#define LF_TRY_ACQUIRE(...) LF_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
// The function checks at run time that the capability is held (and crashes if
// not); the analysis takes it as held from then on.
#define LF_ASSERT_CAPABILITY(x) LF_THREAD_ANNOTATION_(assert_capability(x))
// The function returns a reference to capability |x|.
#define LF_RETURN_CAPABILITY(x) LF_THREAD_ANNOTATION_(lock_returned(x))

// Turns the analysis off for one function. Every use says why in a comment:
// code the analysis cannot follow, never code that is merely inconvenient.
#define LF_NO_THREAD_SAFETY_ANALYSIS LF_THREAD_ANNOTATION_(no_thread_safety_analysis)
