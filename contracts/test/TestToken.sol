// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice TEST ONLY. Open-mint ERC-20 with configurable decimals and an optional transfer fee
/// (basis points, burnt from the received amount).
contract TestToken is ERC20 {
    uint8 private immutable _decimals;
    uint256 private immutable _feeBps;

    constructor(uint8 decimals_, uint256 feeBps) ERC20("Test Token", "TT") {
        _decimals = decimals_;
        _feeBps = feeBps;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (_feeBps != 0 && from != address(0) && to != address(0)) {
            super._update(to, address(0), (value * _feeBps) / 10_000);
        }
    }
}

/// @notice TEST ONLY. ERC-20 transfer functions without `decimals()`.
contract NoDecimalsToken {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        return true;
    }
}
