#!/usr/bin/env python3
"""Every public header, example and benchmark includes, itself, the standard
and third-party headers whose names it uses.

headers.self_contained compiles each header alone, but it does so after a
precompiled prefix of the standard library, fmt and Boost.PFR (which makes it
about twice as fast). That compile still catches every missing eqx include;
this check catches the missing library ones, and more strictly than a compile
would: libstdc++'s headers include each other, so a header that uses
std::vector but includes only <string> compiles today and breaks on another
standard library or version.

What it checks: each name in NAMES below, used in a file (comments and
string literals removed), requires one of the listed headers to be included
by that file directly; in a program (not a .hpp), so does each name in
PROGRAM_NAMES (eqx's optional headers: io, data, dist). An include inside an #if/#elif/#else branch (a
kernels-only block, say) counts only for names used inside that branch.
Where the standard declares a name in several headers, the list is the
header a reader looks for (std::size_t: <cstddef>, std::hash:
<functional>), which is stricter than the standard. Names whose header is
ambiguous (std::get, std::size, std::swap, ...) and names used only in
#define bodies are not checked.

The examples and benchmarks are checked for a reason of their own: they are
compiled several to a file (eqx_write_batch in the root CMakeLists.txt),
where one file's includes would hide another's missing ones.

Usage: check_includes.py <root> [<file under root> ...]
(messages name files relative to <root>; without files, <root> is the
include directory and the files are every <root>/eqx/**/*.hpp).
Exit code 1, with one line per missing include, when any is missing.
"""
import bisect
import pathlib
import re
import sys

# A used name -> the headers any one of which declares it.
NAMES = {
    r"std::(u|w)?string\b|std::to_string\b|std::getline\b|std::stoi\b|std::stol\b|std::stod\b": ("string",),
    r"std::(u|w)?string_view\b": ("string_view", "string"),
    r"std::vector\b": ("vector",),
    r"std::pair\b|std::make_pair\b|std::forward\b|std::exchange\b|std::declval\b|std::move\((?=[^(),]*\))|"
    r"std::(make_)?(integer|index)_sequence(_for)?\b|std::in_place(_type|_index)?\b|std::as_const\b|"
    r"std::to_underlying\b|std::cmp_(less|greater|equal)\w*\b": ("utility",),
    r"std::(is|has|remove|add)_(?!single_bit)\w+\s*<|std::(enable_if|conditional|decay|common_type|underlying_type|"
    r"invoke_result|type_identity|void_t|make_(un)?signed)\w*\s*<|"
    r"std::(integral_constant|true_type|false_type|bool_constant|is_constant_evaluated)\b":
        ("type_traits",),
    r"std::(sort|stable_sort|find|find_if|find_if_not|min|max|minmax|clamp|fill|fill_n|copy_n|copy_if|"
    r"all_of|any_of|none_of|reverse|count|count_if|equal|max_element|min_element|lower_bound|"
    r"upper_bound|unique|remove_if|is_sorted|partial_sort|nth_element|lexicographical_compare|mismatch|"
    r"transform|for_each|replace|copy|copy_backward|rotate|adjacent_find|move_backward)\s*[(<]|"
    r"std::move\((?=[^()]*,[^()]*,)|std::ranges::(sort|find|fill|copy|equal(?!_to)|max|min)\w*\b":
        ("algorithm",),
    r"std::(tuple|make_tuple|tie|apply|tuple_cat|forward_as_tuple|ignore)\b": ("tuple",),
    r"std::(tuple_size|tuple_element)(_v|_t)?\b": ("tuple", "utility", "array"),
    r"std::(optional|nullopt|make_optional|bad_optional_access)\b": ("optional",),
    r"std::(unique_ptr|shared_ptr|weak_ptr|make_shared|make_unique|enable_shared_from_this|"
    r"static_pointer_cast|dynamic_pointer_cast|const_pointer_cast|addressof|align|allocate_shared|"
    r"make_unique_for_overwrite)\b": ("memory",),
    r"std::(sqrt|exp|exp2|expm1|log|log2|log10|log1p|pow|isnan|isinf|isfinite|floor|ceil|round|trunc|"
    r"nearbyint|lround|llround|tanh|sinh|cosh|sin|cos|tan|asin|acos|atan|atan2|erf|erfc|lgamma|tgamma|"
    r"fabs|fmod|remainder|copysign|signbit|nextafter|ldexp|frexp|cbrt|hypot|fma|fmin|fmax)\s*\(":
        ("cmath",),
    r"std::(span|dynamic_extent)\b": ("span",),
    r"std::(size_t|ptrdiff_t|byte|nullptr_t|max_align_t)\b": ("cstddef",),  # <cstddef> defines them all
    r"std::u?int(8|16|32|64|ptr|max)_t\b": ("cstdint",),
    r"std::numeric_limits\b": ("limits",),
    r"std::(function|hash|invoke|reference_wrapper|ref|cref|less|greater|equal_to|plus|multiplies|"
    r"identity|bind_front|not_fn|mem_fn)\b": ("functional",),
    r"std::array\b|std::to_array\b": ("array",),
    r"std::(multi)?map\b": ("map",),
    r"std::(memcpy|memmove|memset|memcmp|strlen|strcmp|strncmp|strchr|strerror)\b": ("cstring",),
    r"std::initializer_list\b": ("initializer_list",),
    r"std::(mutex|recursive_mutex|lock_guard|unique_lock|scoped_lock|once_flag|call_once|defer_lock|"
    r"try_to_lock|adopt_lock)\b": ("mutex",),
    r"std::(shared_mutex|shared_lock)\b": ("shared_mutex",),
    r"std::atomic(_\w+)?\b|std::memory_order\w*\b": ("atomic",),
    r"std::(same_as|convertible_to|integral|signed_integral|unsigned_integral|floating_point|"
    r"derived_from|invocable|regular_invocable|constructible_from|default_initializable|"
    r"copy_constructible|move_constructible|equality_comparable|totally_ordered|predicate)\b":
        ("concepts",),
    r"std::(getenv|malloc|calloc|realloc|free|strtol|strtoll|strtoul|strtoull|strtod|strtof|abort|exit|"
    r"aligned_alloc|atoi|atol|qsort|div)\b": ("cstdlib",),
    r"std::(variant|visit|holds_alternative|monostate|get_if|variant_size|variant_alternative|"
    r"bad_variant_access)\b": ("variant",),
    r"std::filesystem\b": ("filesystem",),
    r"std::unordered_(multi)?map\b": ("unordered_map",),
    r"std::unordered_(multi)?set\b": ("unordered_set",),
    r"std::(multi)?set\b": ("set",),
    r"std::ostream\b|std::endl\b|std::flush\b": ("ostream", "iostream"),
    r"std::istream\b": ("istream", "iostream"),
    r"std::(cout|cerr|cin|clog)\b": ("iostream",),
    r"std::(i|o)?fstream\b|std::filebuf\b": ("fstream",),
    r"std::(i|o)?stringstream\b": ("sstream",),
    r"std::chrono\b": ("chrono",),
    r"std::(exception|exception_ptr|current_exception|rethrow_exception|make_exception_ptr|"
    r"uncaught_exceptions|terminate)\b": ("exception",),
    r"std::(runtime_error|logic_error|invalid_argument|out_of_range|length_error|domain_error|"
    r"range_error|overflow_error|underflow_error)\b": ("stdexcept",),
    r"std::(bad_alloc|nothrow|launder|align_val_t|hardware_\w+_interference_size)\b": ("new",),
    r"std::(thread|jthread)\b|std::this_thread\b": ("thread",),
    r"std::condition_variable\w*\b": ("condition_variable",),
    r"std::(iota|accumulate|reduce|inner_product|partial_sum|exclusive_scan|inclusive_scan|gcd|lcm|"
    r"midpoint)\b": ("numeric",),
    r"std::(back_inserter|inserter|front_inserter|distance|next|prev|advance|"
    r"reverse_iterator|move_iterator|make_move_iterator|ostreambuf_iterator|"
    r"(input|output|forward|bidirectional|random_access|contiguous)_iterator(_tag)?|"
    r"iterator_traits|iter_value_t|sentinel_for)\b": ("iterator",),
    r"std::deque\b": ("deque",),
    r"std::(bit_cast|popcount|countl_zero|countr_zero|countl_one|countr_one|has_single_bit|bit_ceil|"
    r"bit_floor|bit_width|rotl|rotr|endian)\b": ("bit",),
    r"std::numbers\b": ("numbers",),
    r"std::(mt19937(_64)?|random_device|uniform_(int|real)_distribution|normal_distribution)\b":
        ("random",),
    r"std::(strong|weak|partial)_ordering\b|std::compare_three_way\b|\boperator<=>\s*\([^)]*\)[^;{]*=\s*default":
        ("compare",),
    r"std::(type_info|bad_cast)\b": ("typeinfo",),
    r"std::type_index\b": ("typeindex",),
    r"std::(source_location)\b": ("source_location",),
    r"std::(errc|error_code|system_error|generic_category|system_category)\b": ("system_error",),
    r"std::(printf|fprintf|snprintf|fopen|fclose|fread|fwrite|fflush|FILE|puts|fputs|rename)\b|"
    r"std::remove\((?=[^(),]*\))":
        ("cstdio",),
    r"\berrno\b": ("cerrno",),
    r"\bfmt::(format|format_to|format_to_n|formatter|appender|format_string|format_context|"
    r"basic_format_context|vformat|make_format_args|runtime|formatted_size|print|println)\b|\bFMT_\w+\b":
        ("fmt/format.h", "fmt/core.h", "fmt/ranges.h", "fmt/ostream.h", "fmt/args.h"),
    r"\bfmt::(join|to_string|memory_buffer|ptr|underlying|enums|group_digits)\b":  # fmt 9: format.h's own
        ("fmt/format.h", "fmt/ranges.h"),
    r"\bfmt::dynamic_format_arg_store\b": ("fmt/args.h",),
    r"\bboost::pfr::(?!tuple_size)": ("boost/pfr.hpp", "boost/pfr/core.hpp"),
    r"\bboost::pfr::tuple_size": ("boost/pfr.hpp", "boost/pfr/core.hpp", "boost/pfr/tuple_size.hpp"),
    r"\bEigen::": ("Eigen/Core", "Eigen/Dense", "unsupported/Eigen/CXX11/Tensor"),
}
# Programs (examples, benchmarks) also name eqx's optional headers, which
# <eqx/eqx.hpp> does not include and which bring their own link dependencies
# (eqx::data: zlib, eqx::dist: MPI). The library's own headers use the
# specific sub-headers instead, so these are checked in programs only.
PROGRAM_NAMES = {
    r"\beqx::(tree_serialise_leaves|tree_deserialise_leaves)\b": ("eqx/io.hpp", "eqx/io/serialise.hpp"),
    r"\beqx::(read_npy|write_npy)\b": ("eqx/io.hpp", "eqx/io/npy.hpp"),
    r"\beqx::(save_safetensors|load_safetensors)\b": ("eqx/io/safetensors.hpp",),
    r"\beqx::data::": ("eqx/data.hpp", "eqx/data/batches.hpp", "eqx/data/idx.hpp", "eqx/data/mnist.hpp"),
    r"\beqx::dist::": ("eqx/dist.hpp", "eqx/dist/checkpoint.hpp", "eqx/dist/collectives.hpp",
                       "eqx/dist/session.hpp", "eqx/dist/shard.hpp"),
}
COMPILED = [(re.compile(pattern), headers) for pattern, headers in NAMES.items()]
PROGRAM_COMPILED = COMPILED + [(re.compile(pattern), headers) for pattern, headers in PROGRAM_NAMES.items()]
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')


def token_start(text: str, i: int) -> int:
    """Where the identifier or number that ends just before text[i] starts."""
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_'"):
        i -= 1
    return i


def strip_comments_and_strings(text: str) -> str:
    """Blanks out comments and the insides of string and character literals,
    keeping line breaks so that line numbers still match."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j == -1 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j == -1 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text.startswith('R"', i) and text[token_start(text, i):i] in ("", "u8", "u", "U", "L"):
            open_paren = text.find("(", i)
            delimiter = text[i + 2:open_paren]
            j = text.find(")" + delimiter + '"', open_paren)
            j = n if j == -1 else j + len(delimiter) + 2
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c in "\"'":
            # A quote inside a number is a digit separator (1'000, 0xFF'FF);
            # after a letter prefix (L'x', u8"x") it opens a literal.
            if c == "'" and i > 0 and text[token_start(text, i):i][:1].isdigit():
                out.append(c)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + "\n" * text.count("\n", i, min(j, n)) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def branches(lines: list[str]) -> list[tuple[str, ...]]:
    """For each line, the #if branches it is inside, outermost first, each
    named by its condition ("#if X", "#if X / #else"), so that two blocks
    under the same condition are the same branch."""
    result, stack = [], []
    for line in lines:
        directive = " ".join(line.split())
        if re.match(r"#\s*(if|ifdef|ifndef)\b", directive):
            stack.append(directive)
        elif re.match(r"#\s*(elif|else)\b", directive) and stack:
            stack[-1] = stack[-1].split(" / ")[0] + " / " + directive
        elif re.match(r"#\s*endif\b", directive) and stack:
            stack.pop()
        result.append(tuple(stack))
    return result


def missing_includes(path: pathlib.Path, root: pathlib.Path) -> list[str]:
    text = path.read_text()
    code_lines = strip_comments_and_strings(text).split("\n")
    line_branches = branches(code_lines)
    # An include inside an #if branch (a kernels-only block, say) counts only
    # for names used under the same condition: elsewhere it may be compiled out.
    includes = [(match.group(1), where) for line, where in zip(text.split("\n"), line_branches)
                if (match := INCLUDE.match(line))]
    code_lines = ["" if line.lstrip().startswith("#") else line for line in code_lines]
    code = "\n".join(code_lines)
    line_starts = [0]
    for line in code_lines[:-1]:
        line_starts.append(line_starts[-1] + len(line) + 1)
    problems = []
    for pattern, headers in (COMPILED if path.suffix == ".hpp" else PROGRAM_COMPILED):
        for match in pattern.finditer(code):
            line = bisect.bisect_right(line_starts, match.start())
            here = line_branches[line - 1]
            if any(h in headers and here[:len(where)] == where for h, where in includes):
                continue
            want = " or ".join(f"<{h}>" for h in headers)
            elsewhere = " outside the #if branch that includes it" if any(h in headers for h, _ in includes) else ""
            problems.append(f"{path.relative_to(root)}:{line}: uses '{match.group(0).rstrip('(< ')}'{elsewhere} "
                            f"but does not include {want}; add the include to this file")
            break
    return problems


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip().split("\n\n")[-1], file=sys.stderr)
        return 2
    root = pathlib.Path(sys.argv[1]).resolve()
    files = ([pathlib.Path(p).resolve() for p in sys.argv[2:]] or
             sorted((root / "eqx").rglob("*.hpp")))
    problems = [p for file in files for p in missing_includes(file, root)]
    for problem in problems:
        print(problem)
    print(f"check_includes: {len(files)} files, {len(problems)} missing includes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
