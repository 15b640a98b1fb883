// Placeholder (replaced by the Adam and L-BFGS fit loop).
#include "metaglasso/fit.hpp"

namespace metaglasso {

FitResult fit(const std::vector<Dataset>&, const Eigen::Ref<const Matrix>&, const FitOptions&) {
  throw std::logic_error("fit: not implemented yet");
}

}  // namespace metaglasso
