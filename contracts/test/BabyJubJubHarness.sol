// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {Point, EGCT} from "../types/Types.sol";
import {BabyJubJub} from "../libraries/BabyJubJub.sol";

/// @notice TEST ONLY. Exposes the BabyJubJub library.
contract BabyJubJubHarness {
    function base8() external pure returns (Point memory) {
        return BabyJubJub.base8();
    }

    function add(Point memory a, Point memory b) external view returns (Point memory) {
        return BabyJubJub.add(a, b);
    }

    function sub(Point memory a, Point memory b) external view returns (Point memory) {
        return BabyJubJub.sub(a, b);
    }

    function negate(Point memory a) external pure returns (Point memory) {
        return BabyJubJub.negate(a);
    }

    function scalarMul(Point memory a, uint256 s) external view returns (Point memory) {
        return BabyJubJub.scalarMul(a, s);
    }

    function isOnCurve(Point memory a) external pure returns (bool) {
        return BabyJubJub.isOnCurve(a);
    }

    function addEGCT(EGCT memory a, EGCT memory b) external view returns (EGCT memory) {
        return BabyJubJub.addEGCT(a, b);
    }

    function subEGCT(EGCT memory a, EGCT memory b) external view returns (EGCT memory) {
        return BabyJubJub.subEGCT(a, b);
    }
}
